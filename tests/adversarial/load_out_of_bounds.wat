;; expect: trap
;; Reads past the end of its memory in decide (an address far beyond the 2 pages it has): the
;; bounds check, by guard page and signal or in code, must end the call, not the host.
(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (func (export "leadtime_decide") (param i32 i32) (result i64)
    (i64.load (i32.const 0x7fff0000)))
)
