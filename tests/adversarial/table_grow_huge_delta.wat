;; expect: out-of-memory
;; Grows a table by 4294967295 elements (-1 as i32) in one go, and traps if refused quietly: the
;; growth is over the table cap, not a matter of fuel (wasmtime charges fuel per element asked).
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (table $t 1 funcref)
  (func (export "leadtime_decide") (param i32 i32) (result i64)
    (if (i32.eq (table.grow $t (ref.null func) (i32.const -1)) (i32.const -1)) (then unreachable))
    i64.const 0)
)
