;; expect: out-of-memory
;; Grows memory 16 pages at a time and writes to every new page.
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (func (export "leadtime_decide") (param i32 i32) (result i64) (local $old i32)
    (block $done (loop $l
      (local.set $old (memory.grow (i32.const 16)))
      (br_if $done (i32.eq (local.get $old) (i32.const -1)))
      (i32.store (i32.mul (local.get $old) (i32.const 65536)) (i32.const 7))
      (br $l)))
    i64.const 0)
)
