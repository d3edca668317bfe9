;; expect: stack-overflow
;; Unbounded recursion.
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (func $r (param i32) (result i32) (call $r (i32.add (local.get 0) (i32.const 1))))
  (func (export "leadtime_decide") (param i32 i32) (result i64) (drop (call $r (i32.const 0))) i64.const 0)
)
