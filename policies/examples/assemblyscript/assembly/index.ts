// Target tracking with headroom, in AssemblyScript: the conformance twin of policies/examples/rust.
//
// replicas = ceil(latest load × (1 + headroom) / target per pod), the largest over the metrics
// with a positive target and a value; headroom doubles while the p90 ready time is over 120 s.
// Param `headroom` (number in 0..=10, default 0.1). With no usable metric: hold current.

import { Params, Request, Response, setDecide, setInit } from "../../../../guest-sdk/assemblyscript/assembly/index";
export {
  leadtime_abi_version,
  leadtime_alloc,
  leadtime_decide,
  leadtime_init,
} from "../../../../guest-sdk/assemblyscript/assembly/index";

const HEADROOM_ERROR = "param `headroom` must be a number in 0..=10";

function headroom(params: Params): f64 {
  const h = params.number("headroom", 0.1);
  return h >= 0 && h <= 10 ? h : NaN;
}

function init(params: Params): string | null {
  return isNaN(headroom(params)) ? HEADROOM_ERROR : null;
}

function decide(req: Request): Response {
  let h = headroom(req.params);
  if (isNaN(h)) return Response.fail(HEADROOM_ERROR);
  const p90 = req.readyQuantile(0.9);
  const slow = p90 > 120;
  if (slow) h *= 2;
  let best = -1;
  let bestWant: f64 = -1;
  for (let i = 0; i < req.metrics.length; i++) {
    const m = req.metrics[i];
    if (!(m.targetPerPod > 0 && isFinite(m.targetPerPod))) continue;
    const last = m.last();
    if (isNaN(last)) continue;
    const load = last > 0 ? last : 0;
    const want = Math.ceil((load * (1 + h)) / m.targetPerPod);
    if (want > bestWant) {
      bestWant = want;
      best = i;
    }
  }
  if (best < 0) {
    return Response.of(<f64>req.current, "no usable metric: holding " + req.current.toString() + " replicas");
  }
  const replicas: u32 = bestWant >= 4294967295 ? 4294967295 : <u32>bestWant;
  let reason = req.metrics[best].name + ": " + replicas.toString() + " pods for the latest load";
  if (slow) reason += " (slow starts: headroom doubled)";
  return Response.of(<f64>replicas, reason);
}

setDecide(decide);
setInit(init);
