;; expect: out-of-memory
;; Grows a table by a million elements at a time.
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (table $t 1 funcref)
  (func (export "leadtime_decide") (param i32 i32) (result i64)
    (block $done (loop $l (br_if $done (i32.eq (table.grow $t (ref.null func) (i32.const 1000000)) (i32.const -1))) (br $l)))
    i64.const 0)
)
