;; expect: trap
;; Executes `unreachable` (what a Rust panic compiles to).
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (func (export "leadtime_decide") (param i32 i32) (result i64) unreachable)
)
