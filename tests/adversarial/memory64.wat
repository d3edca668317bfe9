;; expect: wrong-signature
;; Exports a 64-bit memory: payload addresses are 32-bit in ABI v1.
(module
  (memory (export "memory") i64 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (func (export "leadtime_decide") (param i32 i32) (result i64) i64.const 4398046511135)
)
