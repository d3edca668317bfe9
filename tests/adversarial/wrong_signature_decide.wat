;; expect: wrong-signature
;; leadtime_decide takes one i32 and returns i32.
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (func (export "leadtime_decide") (param i32) (result i32) i32.const 0)
)
