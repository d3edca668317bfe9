;; expect: trap
;; Integer division by zero.
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (func (export "leadtime_decide") (param i32 i32) (result i64) (i64.div_s (i64.const 1) (i64.extend_i32_u (i32.sub (local.get 1) (local.get 1)))))
)
