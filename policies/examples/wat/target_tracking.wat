;; Target tracking with headroom, written by hand in WebAssembly text: the conformance twin of
;; policies/examples/{rust,c,assemblyscript}. No compiler, no SDK: docs/ABI.md alone.
;;
;; replicas = ceil(latest load x (1 + headroom) / target per pod), the largest over the metrics
;; with a positive target and a value; headroom doubles while the p90 ready time is over 120 s.
;; Param `headroom` (number in 0..=10, default 0.1). With no usable metric: hold current.
;;
;; The reader trusts the host to send well-formed MessagePack (the engine encodes every request);
;; a byte it does not expect traps.
;;
;; Memory: constants below 4096, digits at 4096, the request at 65536, then (each sized by the
;; request's length, which bounds them) the metric table, the ready times, and the response.
(module
  (import "leadtime" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)

  (data (i32.const 16) "replicas")
  (data (i32.const 32) "metrics")
  (data (i32.const 48) "ready_times")
  (data (i32.const 64) "params")
  (data (i32.const 80) "current")
  (data (i32.const 96) "name")
  (data (i32.const 112) "target_per_pod")
  (data (i32.const 128) "values")
  (data (i32.const 144) "ready_seconds")
  (data (i32.const 160) "headroom")
  (data (i32.const 256) "param `headroom` must be a number in 0..=10")
  (data (i32.const 320) "no usable metric: holding ")
  (data (i32.const 352) " replicas")
  (data (i32.const 368) ": ")
  (data (i32.const 384) " pods for the latest load")
  (data (i32.const 416) " (slow starts: headroom doubled)")

  (global $pos (mut i32) (i32.const 0))   ;; read cursor
  (global $out (mut i32) (i32.const 0))   ;; write cursor
  (global $metrics (mut i32) (i32.const 0)) ;; table of 32-byte entries
  (global $ready (mut i32) (i32.const 0))   ;; f64 array
  (global $response (mut i32) (i32.const 0))

  ;; ---- Reading. ----

  (func $u8 (result i32)
    (local $b i32)
    (local.set $b (i32.load8_u (global.get $pos)))
    (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
    (local.get $b))

  ;; The next n bytes, big-endian.
  (func $be (param $n i32) (result i64)
    (local $v i64)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $v (i64.or (i64.shl (local.get $v) (i64.const 8)) (i64.extend_i32_u (call $u8))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $more)))
    (local.get $v))

  ;; A string's length after its header, or -1 (nothing consumed) if the next value is not one.
  (func $str (result i32)
    (local $t i32)
    (local.set $t (i32.load8_u (global.get $pos)))
    (if (i32.eq (i32.and (local.get $t) (i32.const 0xe0)) (i32.const 0xa0))
      (then (drop (call $u8)) (return (i32.and (local.get $t) (i32.const 0x1f)))))
    (if (i32.eq (local.get $t) (i32.const 0xd9))
      (then (drop (call $u8)) (return (i32.wrap_i64 (call $be (i32.const 1))))))
    (if (i32.eq (local.get $t) (i32.const 0xda))
      (then (drop (call $u8)) (return (i32.wrap_i64 (call $be (i32.const 2))))))
    (if (i32.eq (local.get $t) (i32.const 0xdb))
      (then (drop (call $u8)) (return (i32.wrap_i64 (call $be (i32.const 4))))))
    (i32.const -1))

  ;; A map's or array's length after its header; `fix` is 0x80 (map) or 0x90 (array).
  (func $container (param $fix i32) (result i32)
    (local $t i32)
    (local.set $t (call $u8))
    (if (i32.eq (i32.and (local.get $t) (i32.const 0xf0)) (local.get $fix))
      (then (return (i32.and (local.get $t) (i32.const 0x0f)))))
    ;; map16 0xde / array16 0xdc, map32 0xdf / array32 0xdd
    (if (i32.eq (local.get $t) (select (i32.const 0xde) (i32.const 0xdc) (i32.eq (local.get $fix) (i32.const 0x80))))
      (then (return (i32.wrap_i64 (call $be (i32.const 2))))))
    (if (i32.eq (local.get $t) (select (i32.const 0xdf) (i32.const 0xdd) (i32.eq (local.get $fix) (i32.const 0x80))))
      (then (return (i32.wrap_i64 (call $be (i32.const 4))))))
    unreachable)

  ;; A number of any width; nil is NaN. Traps on anything else.
  (func $num (result f64)
    (local $t i32)
    (local.set $t (call $u8))
    (if (i32.le_u (local.get $t) (i32.const 0x7f)) (then (return (f64.convert_i32_u (local.get $t)))))
    (if (i32.ge_u (local.get $t) (i32.const 0xe0)) (then (return (f64.convert_i32_s (i32.extend8_s (local.get $t))))))
    (if (i32.eq (local.get $t) (i32.const 0xc0)) (then (return (f64.const nan))))
    (if (i32.eq (local.get $t) (i32.const 0xcb)) (then (return (f64.reinterpret_i64 (call $be (i32.const 8))))))
    (if (i32.eq (local.get $t) (i32.const 0xca))
      (then (return (f64.promote_f32 (f32.reinterpret_i32 (i32.wrap_i64 (call $be (i32.const 4))))))))
    (if (i32.eq (local.get $t) (i32.const 0xcc)) (then (return (f64.convert_i64_u (call $be (i32.const 1))))))
    (if (i32.eq (local.get $t) (i32.const 0xcd)) (then (return (f64.convert_i64_u (call $be (i32.const 2))))))
    (if (i32.eq (local.get $t) (i32.const 0xce)) (then (return (f64.convert_i64_u (call $be (i32.const 4))))))
    (if (i32.eq (local.get $t) (i32.const 0xcf)) (then (return (f64.convert_i64_u (call $be (i32.const 8))))))
    (if (i32.eq (local.get $t) (i32.const 0xd0)) (then (return (f64.convert_i64_s (i64.extend8_s (call $be (i32.const 1)))))))
    (if (i32.eq (local.get $t) (i32.const 0xd1)) (then (return (f64.convert_i64_s (i64.extend16_s (call $be (i32.const 2)))))))
    (if (i32.eq (local.get $t) (i32.const 0xd2)) (then (return (f64.convert_i64_s (i64.extend32_s (call $be (i32.const 4)))))))
    (if (i32.eq (local.get $t) (i32.const 0xd3)) (then (return (f64.convert_i64_s (call $be (i32.const 8))))))
    unreachable)

  ;; Skips one value, containers included: `pending` counts the values still to skip.
  (func $skip
    (local $pending i32) (local $t i32) (local $n i32)
    (local.set $pending (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $pending)))
        (local.set $pending (i32.sub (local.get $pending) (i32.const 1)))
        (local.set $t (i32.load8_u (global.get $pos)))
        (local.set $n (call $str))
        (if (i32.ge_s (local.get $n) (i32.const 0))
          (then (global.set $pos (i32.add (global.get $pos) (local.get $n))) (br $next)))
        (if (i32.or (i32.eq (i32.and (local.get $t) (i32.const 0xf0)) (i32.const 0x80))
                    (i32.or (i32.eq (local.get $t) (i32.const 0xde)) (i32.eq (local.get $t) (i32.const 0xdf))))
          (then
            (local.set $pending (i32.add (local.get $pending) (i32.shl (call $container (i32.const 0x80)) (i32.const 1))))
            (br $next)))
        (if (i32.or (i32.eq (i32.and (local.get $t) (i32.const 0xf0)) (i32.const 0x90))
                    (i32.or (i32.eq (local.get $t) (i32.const 0xdc)) (i32.eq (local.get $t) (i32.const 0xdd))))
          (then
            (local.set $pending (i32.add (local.get $pending) (call $container (i32.const 0x90))))
            (br $next)))
        (if (i32.or (i32.eq (local.get $t) (i32.const 0xc2)) (i32.eq (local.get $t) (i32.const 0xc3)))
          (then (drop (call $u8)) (br $next)))
        ;; bin 8/16/32
        (if (i32.eq (local.get $t) (i32.const 0xc4))
          (then (drop (call $u8)) (global.set $pos (i32.add (global.get $pos) (i32.wrap_i64 (call $be (i32.const 1))))) (br $next)))
        (if (i32.eq (local.get $t) (i32.const 0xc5))
          (then (drop (call $u8)) (global.set $pos (i32.add (global.get $pos) (i32.wrap_i64 (call $be (i32.const 2))))) (br $next)))
        (if (i32.eq (local.get $t) (i32.const 0xc6))
          (then (drop (call $u8)) (global.set $pos (i32.add (global.get $pos) (i32.wrap_i64 (call $be (i32.const 4))))) (br $next)))
        ;; everything else the host sends is a number or nil
        (drop (call $num))
        (br $next))))

  ;; Whether the `len` bytes at `a` equal the `blen` bytes at `b`.
  (func $eq (param $a i32) (param $len i32) (param $b i32) (param $blen i32) (result i32)
    (if (i32.ne (local.get $len) (local.get $blen)) (then (return (i32.const 0))))
    (block $differ
      (loop $more
        (if (i32.eqz (local.get $len)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $more)))
    (i32.const 0))

  ;; Reads a key and compares it with the constant at `c` of length `clen`.
  (func $key_is (param $key i32) (param $klen i32) (param $c i32) (param $clen i32) (result i32)
    (call $eq (local.get $key) (local.get $klen) (local.get $c) (local.get $clen)))

  ;; Reads a params map at the cursor; the headroom, or NaN if it is not a number in 0..=10.
  (func $params (result f64)
    (local $n i32) (local $klen i32) (local $key i32) (local $t i32) (local $h f64)
    (local.set $h (f64.const 0.1))
    (local.set $n (call $container (i32.const 0x80)))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (local.set $klen (call $str))
        (local.set $key (global.get $pos))
        (global.set $pos (i32.add (global.get $pos) (local.get $klen)))
        (if (i32.eqz (call $key_is (local.get $key) (local.get $klen) (i32.const 160) (i32.const 8)))
          (then (call $skip) (br $next)))
        (local.set $t (i32.load8_u (global.get $pos)))
        ;; bool, text or nil: not a number
        (if (i32.or (i32.or (i32.eq (local.get $t) (i32.const 0xc2)) (i32.eq (local.get $t) (i32.const 0xc3)))
                    (i32.or (i32.eq (local.get $t) (i32.const 0xc0)) (i32.ge_s (call $str) (i32.const 0))))
          (then
            ;; the caller stops reading here, so the cursor may stay where it is
            (return (f64.const nan))))
        (local.set $h (call $num))
        (br $next)))
    ;; NaN fails both comparisons, so a NaN or infinite headroom is refused too.
    (if (result f64) (i32.and (f64.ge (local.get $h) (f64.const 0)) (f64.le (local.get $h) (f64.const 10)))
      (then (local.get $h))
      (else (f64.const nan))))

  ;; ---- Writing. ----

  (func $emit (param $src i32) (param $len i32)
    (memory.copy (global.get $out) (local.get $src) (local.get $len))
    (global.set $out (i32.add (global.get $out) (local.get $len))))

  (func $emit_byte (param $b i32)
    (i32.store8 (global.get $out) (local.get $b))
    (global.set $out (i32.add (global.get $out) (i32.const 1))))

  ;; Decimal digits of an unsigned 32-bit number.
  (func $emit_u32 (param $v i32)
    (local $p i32)
    (local.set $p (i32.const 4106))
    (loop $more
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $more (local.get $v)))
    (call $emit (local.get $p) (i32.sub (i32.const 4106) (local.get $p))))

  ;; Packs the response address and length as the ABI wants.
  (func $finish (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (global.get $response)) (i64.const 32))
      (i64.extend_i32_u (i32.sub (global.get $out) (global.get $response)))))

  ;; {"error": <headroom message>}
  (func $headroom_error (result i64)
    (global.set $out (global.get $response))
    (call $emit_byte (i32.const 0x81))
    (call $emit_byte (i32.const 0xa5))
    (call $emit_byte (i32.const 0x65)) (call $emit_byte (i32.const 0x72)) (call $emit_byte (i32.const 0x72))
    (call $emit_byte (i32.const 0x6f)) (call $emit_byte (i32.const 0x72)) ;; "error"
    (call $emit_byte (i32.const 0xd9)) (call $emit_byte (i32.const 43))
    (call $emit (i32.const 256) (i32.const 43))
    (call $finish))

  ;; ---- Sorting (heap sort, so that long ready-time lists stay cheap). ----

  (func $f (param $i i32) (result f64)
    (f64.load (i32.add (global.get $ready) (i32.shl (local.get $i) (i32.const 3)))))

  (func $swap (param $i i32) (param $j i32)
    (local $t f64)
    (local.set $t (call $f (local.get $i)))
    (f64.store (i32.add (global.get $ready) (i32.shl (local.get $i) (i32.const 3))) (call $f (local.get $j)))
    (f64.store (i32.add (global.get $ready) (i32.shl (local.get $j) (i32.const 3))) (local.get $t)))

  (func $sift_down (param $root i32) (param $n i32)
    (local $child i32)
    (loop $more
      (local.set $child (i32.add (i32.shl (local.get $root) (i32.const 1)) (i32.const 1)))
      (if (i32.ge_u (local.get $child) (local.get $n)) (then (return)))
      (if (i32.and (i32.lt_u (i32.add (local.get $child) (i32.const 1)) (local.get $n))
                   (f64.lt (call $f (local.get $child)) (call $f (i32.add (local.get $child) (i32.const 1)))))
        (then (local.set $child (i32.add (local.get $child) (i32.const 1)))))
      (if (i32.eqz (f64.lt (call $f (local.get $root)) (call $f (local.get $child)))) (then (return)))
      (call $swap (local.get $root) (local.get $child))
      (local.set $root (local.get $child))
      (br $more)))

  (func $sort (param $n i32)
    (local $i i32)
    (if (i32.lt_u (local.get $n) (i32.const 2)) (then (return)))
    (local.set $i (i32.shr_u (local.get $n) (i32.const 1)))
    (loop $heapify
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (call $sift_down (local.get $i) (local.get $n))
      (br_if $heapify (local.get $i)))
    (local.set $i (i32.sub (local.get $n) (i32.const 1)))
    (loop $pop
      (call $swap (i32.const 0) (local.get $i))
      (call $sift_down (i32.const 0) (local.get $i))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $pop (local.get $i))))

  ;; ---- The ABI. ----

  (func (export "leadtime_abi_version") (result i32) (i32.const 1))

  ;; The request goes at 65536; the regions after it are laid out (and memory grown) here.
  (func (export "leadtime_alloc") (param $len i32) (result i32)
    (local $need i32) (local $have i32)
    (global.set $metrics (i32.and (i32.add (i32.add (i32.const 65536) (local.get $len)) (i32.const 7)) (i32.const -8)))
    (global.set $ready (i32.add (global.get $metrics) (i32.add (local.get $len) (i32.const 32))))
    (global.set $response (i32.add (global.get $ready) (i32.add (local.get $len) (i32.const 8))))
    (local.set $need (i32.add (global.get $response) (i32.add (local.get $len) (i32.const 512))))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (local.get $have))
      (then
        (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $need) (local.get $have)) (i32.const 65535)) (i32.const 16)))
                    (i32.const -1))
          (then unreachable))))
    (i32.const 65536))

  (func (export "leadtime_init") (param $ptr i32) (param $len i32) (result i32)
    (local $h f64)
    (global.set $pos (local.get $ptr))
    (local.set $h (call $params))
    ;; NaN is the only value that differs from itself: the params are refused
    (if (f64.ne (local.get $h) (local.get $h))
      (then
        (call $log (i32.const 3) (i32.const 256) (i32.const 43))
        (return (i32.const 1))))
    (i32.const 0))

  (func (export "leadtime_decide") (param $ptr i32) (param $len i32) (result i64)
    (local $n i32) (local $klen i32) (local $key i32) (local $i i32) (local $m i32) (local $count i32)
    (local $fields i32) (local $flen i32) (local $field i32) (local $vals i32) (local $v f64)
    (local $name i32) (local $name_len i32) (local $target f64) (local $last f64) (local $has_last i32)
    (local $current i32) (local $h f64) (local $n_ready i32)
    (local $pos90 f64) (local $lo i32) (local $hi i32) (local $p90 f64) (local $slow i32)
    (local $best i32) (local $best_want f64) (local $want f64) (local $load f64) (local $replicas i64)
    (local $reason_at i32)
    (global.set $pos (local.get $ptr))
    (local.set $h (f64.const 0.1))
    (local.set $n (call $container (i32.const 0x80)))
    (block $request_done
      (loop $request_field
        (br_if $request_done (i32.eqz (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (local.set $klen (call $str))
        (local.set $key (global.get $pos))
        (global.set $pos (i32.add (global.get $pos) (local.get $klen)))

        ;; replicas: keep `current`
        (if (call $key_is (local.get $key) (local.get $klen) (i32.const 16) (i32.const 8))
          (then
            (local.set $fields (call $container (i32.const 0x80)))
            (block $done
              (loop $next
                (br_if $done (i32.eqz (local.get $fields)))
                (local.set $fields (i32.sub (local.get $fields) (i32.const 1)))
                (local.set $flen (call $str))
                (local.set $field (global.get $pos))
                (global.set $pos (i32.add (global.get $pos) (local.get $flen)))
                (if (call $key_is (local.get $field) (local.get $flen) (i32.const 80) (i32.const 7))
                  (then (local.set $current (i32.trunc_f64_u (call $num))))
                  (else (call $skip)))
                (br $next)))
            (br $request_field)))

        ;; metrics: one table entry each (name ptr, name len, target, last value, has a value)
        (if (call $key_is (local.get $key) (local.get $klen) (i32.const 32) (i32.const 7))
          (then
            (local.set $count (call $container (i32.const 0x90)))
            (local.set $i (i32.const 0))
            (block $done
              (loop $metric
                (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
                (local.set $name (i32.const 0))
                (local.set $name_len (i32.const 0))
                (local.set $target (f64.const nan))
                (local.set $has_last (i32.const 0))
                (local.set $fields (call $container (i32.const 0x80)))
                (block $fields_done
                  (loop $field_next
                    (br_if $fields_done (i32.eqz (local.get $fields)))
                    (local.set $fields (i32.sub (local.get $fields) (i32.const 1)))
                    (local.set $flen (call $str))
                    (local.set $field (global.get $pos))
                    (global.set $pos (i32.add (global.get $pos) (local.get $flen)))
                    (if (call $key_is (local.get $field) (local.get $flen) (i32.const 96) (i32.const 4))
                      (then
                        (local.set $name_len (call $str))
                        (local.set $name (global.get $pos))
                        (global.set $pos (i32.add (global.get $pos) (local.get $name_len)))
                        (br $field_next)))
                    (if (call $key_is (local.get $field) (local.get $flen) (i32.const 112) (i32.const 14))
                      (then (local.set $target (call $num)) (br $field_next)))
                    (if (call $key_is (local.get $field) (local.get $flen) (i32.const 128) (i32.const 6))
                      (then
                        ;; the last value that is not NaN
                        (local.set $vals (call $container (i32.const 0x90)))
                        (block $values_done
                          (loop $value
                            (br_if $values_done (i32.eqz (local.get $vals)))
                            (local.set $vals (i32.sub (local.get $vals) (i32.const 1)))
                            (local.set $v (call $num))
                            (if (f64.eq (local.get $v) (local.get $v))
                              (then (local.set $last (local.get $v)) (local.set $has_last (i32.const 1))))
                            (br $value)))
                        (br $field_next)))
                    (call $skip)
                    (br $field_next)))
                (local.set $m (i32.add (global.get $metrics) (i32.shl (local.get $i) (i32.const 5))))
                (i32.store (local.get $m) (local.get $name))
                (i32.store offset=4 (local.get $m) (local.get $name_len))
                (f64.store offset=8 (local.get $m) (local.get $target))
                (f64.store offset=16 (local.get $m) (local.get $last))
                (i32.store offset=24 (local.get $m) (local.get $has_last))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $metric)))
            (br $request_field)))

        ;; ready_times: keep the finite, non-negative ready_seconds
        (if (call $key_is (local.get $key) (local.get $klen) (i32.const 48) (i32.const 11))
          (then
            (local.set $vals (call $container (i32.const 0x90)))
            (block $done
              (loop $entry
                (br_if $done (i32.eqz (local.get $vals)))
                (local.set $vals (i32.sub (local.get $vals) (i32.const 1)))
                (local.set $fields (call $container (i32.const 0x80)))
                (block $fields_done
                  (loop $field_next
                    (br_if $fields_done (i32.eqz (local.get $fields)))
                    (local.set $fields (i32.sub (local.get $fields) (i32.const 1)))
                    (local.set $flen (call $str))
                    (local.set $field (global.get $pos))
                    (global.set $pos (i32.add (global.get $pos) (local.get $flen)))
                    (if (call $key_is (local.get $field) (local.get $flen) (i32.const 144) (i32.const 13))
                      (then
                        (local.set $v (call $num))
                        ;; v - v is 0 only for finite v
                        (if (i32.and (f64.eq (f64.sub (local.get $v) (local.get $v)) (f64.const 0))
                                     (f64.ge (local.get $v) (f64.const 0)))
                          (then
                            (f64.store (i32.add (global.get $ready) (i32.shl (local.get $n_ready) (i32.const 3))) (local.get $v))
                            (local.set $n_ready (i32.add (local.get $n_ready) (i32.const 1))))))
                      (else (call $skip)))
                    (br $field_next)))
                (br $entry)))
            (br $request_field)))

        (if (call $key_is (local.get $key) (local.get $klen) (i32.const 64) (i32.const 6))
          (then
            (local.set $h (call $params))
            (if (f64.ne (local.get $h) (local.get $h)) (then (return (call $headroom_error))))
            (br $request_field)))

        (call $skip)
        (br $request_field)))

    ;; p90 of the ready times, linear interpolation between the sorted neighbours
    (if (local.get $n_ready)
      (then
        (call $sort (local.get $n_ready))
        (local.set $pos90 (f64.mul (f64.const 0.9) (f64.convert_i32_u (i32.sub (local.get $n_ready) (i32.const 1)))))
        (local.set $lo (i32.trunc_f64_u (local.get $pos90)))
        (local.set $hi (i32.add (local.get $lo) (i32.const 1)))
        (if (i32.ge_u (local.get $hi) (local.get $n_ready)) (then (local.set $hi (i32.sub (local.get $n_ready) (i32.const 1)))))
        (local.set $p90
          (f64.add (call $f (local.get $lo))
            (f64.mul (f64.sub (call $f (local.get $hi)) (call $f (local.get $lo)))
                     (f64.sub (local.get $pos90) (f64.convert_i32_u (local.get $lo))))))
        (local.set $slow (f64.gt (local.get $p90) (f64.const 120)))))
    (if (local.get $slow) (then (local.set $h (f64.mul (local.get $h) (f64.const 2)))))

    ;; the largest want over the usable metrics; the first wins a tie
    (local.set $best (i32.const -1))
    (local.set $best_want (f64.const -1))
    (local.set $i (i32.const 0))
    (block $done
      (loop $metric
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $m (i32.add (global.get $metrics) (i32.shl (local.get $i) (i32.const 5))))
        (local.set $target (f64.load offset=8 (local.get $m)))
        (if (i32.and (i32.and (f64.gt (local.get $target) (f64.const 0))
                              (f64.eq (f64.sub (local.get $target) (local.get $target)) (f64.const 0)))
                     (i32.load offset=24 (local.get $m)))
          (then
            (local.set $load (f64.max (f64.load offset=16 (local.get $m)) (f64.const 0)))
            (local.set $want
              (f64.ceil (f64.div (f64.mul (local.get $load) (f64.add (f64.const 1) (local.get $h))) (local.get $target))))
            (if (f64.gt (local.get $want) (local.get $best_want))
              (then (local.set $best_want (local.get $want)) (local.set $best (local.get $i))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $metric)))

    ;; {"replicas": uint32, "reason": str32}
    (global.set $out (global.get $response))
    (call $emit_byte (i32.const 0x82))
    (call $emit_byte (i32.const 0xa8))
    (call $emit (i32.const 16) (i32.const 8))
    (if (i32.lt_s (local.get $best) (i32.const 0))
      (then (local.set $replicas (i64.extend_i32_u (local.get $current))))
      (else
        (local.set $replicas (i64.trunc_sat_f64_u (local.get $best_want)))
        (if (i64.gt_u (local.get $replicas) (i64.const 0xffffffff))
          (then (local.set $replicas (i64.const 0xffffffff))))))
    (call $emit_byte (i32.const 0xce))
    (call $emit_byte (i32.wrap_i64 (i64.shr_u (local.get $replicas) (i64.const 24))))
    (call $emit_byte (i32.wrap_i64 (i64.shr_u (local.get $replicas) (i64.const 16))))
    (call $emit_byte (i32.wrap_i64 (i64.shr_u (local.get $replicas) (i64.const 8))))
    (call $emit_byte (i32.wrap_i64 (local.get $replicas)))
    (call $emit_byte (i32.const 0xa6))
    (call $emit_byte (i32.const 0x72)) (call $emit_byte (i32.const 0x65)) (call $emit_byte (i32.const 0x61))
    (call $emit_byte (i32.const 0x73)) (call $emit_byte (i32.const 0x6f)) (call $emit_byte (i32.const 0x6e)) ;; "reason"
    ;; str32 header; the length is patched once the text is written
    (call $emit_byte (i32.const 0xdb))
    (local.set $reason_at (global.get $out))
    (global.set $out (i32.add (global.get $out) (i32.const 4)))
    (if (i32.lt_s (local.get $best) (i32.const 0))
      (then
        (call $emit (i32.const 320) (i32.const 26))
        (call $emit_u32 (local.get $current))
        (call $emit (i32.const 352) (i32.const 9)))
      (else
        (local.set $m (i32.add (global.get $metrics) (i32.shl (local.get $best) (i32.const 5))))
        (call $emit (i32.load (local.get $m)) (i32.load offset=4 (local.get $m)))
        (call $emit (i32.const 368) (i32.const 2))
        (call $emit_u32 (i32.wrap_i64 (local.get $replicas)))
        (call $emit (i32.const 384) (i32.const 25))
        (if (local.get $slow) (then (call $emit (i32.const 416) (i32.const 32))))))
    (local.set $klen (i32.sub (global.get $out) (i32.add (local.get $reason_at) (i32.const 4))))
    (i32.store8 (local.get $reason_at) (i32.shr_u (local.get $klen) (i32.const 24)))
    (i32.store8 offset=1 (local.get $reason_at) (i32.shr_u (local.get $klen) (i32.const 16)))
    (i32.store8 offset=2 (local.get $reason_at) (i32.shr_u (local.get $klen) (i32.const 8)))
    (i32.store8 offset=3 (local.get $reason_at) (local.get $klen))
    (call $finish))
)
