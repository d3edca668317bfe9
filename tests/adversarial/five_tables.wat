;; expect: out-of-memory
;; Declares five tables: four per instance is the cap.
(module
  (memory (export "memory") 2)
  (table 1 funcref)
  (table 1 funcref)
  (table 1 funcref)
  (table 1 funcref)
  (table 1 funcref)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (data (i32.const 1024) "\82\a8\72\65\70\6c\69\63\61\73\03\a6\72\65\61\73\6f\6e\ac\66\69\78\65\64\20\61\6e\73\77\65\72")
  (func (export "leadtime_decide") (param i32 i32) (result i64) i64.const 4398046511135)
)
