;; expect: invalid-module
;; Declares a shared memory: the sandbox has threads off, so the module does not even validate.
(module
  (memory (export "memory") 2 2 shared)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (func (export "leadtime_decide") (param i32 i32) (result i64) i64.const 4398046511135)
)
