// {{name}}: a leadtime scaling policy in AssemblyScript.
//
// replicas = ceil(latest load × (1 + headroom) / target per pod), the largest over the metrics.
// Param `headroom` (fraction, default 0). Change `decide` to make it yours.

import { Params, Request, Response, setDecide, setInit } from "./leadtime";
export { leadtime_abi_version, leadtime_alloc, leadtime_decide, leadtime_init } from "./leadtime";

const HEADROOM_ERROR = "param `headroom` must be a number in 0..=10";

function headroom(params: Params): f64 {
  const h = params.number("headroom", 0);
  return h >= 0 && h <= 10 ? h : NaN;
}

function init(params: Params): string | null {
  return isNaN(headroom(params)) ? HEADROOM_ERROR : null;
}

function decide(req: Request): Response {
  const h = headroom(req.params);
  if (isNaN(h)) return Response.fail(HEADROOM_ERROR);
  let best = -1;
  let bestWant: f64 = -1;
  for (let i = 0; i < req.metrics.length; i++) {
    const m = req.metrics[i];
    if (!(m.targetPerPod > 0 && isFinite(m.targetPerPod))) {
      return Response.fail("a metric's target_per_pod must be positive");
    }
    const last = m.last();
    if (isNaN(last)) continue;
    const want = Math.ceil(((last > 0 ? last : 0) * (1 + h)) / m.targetPerPod);
    if (want > bestWant) {
      bestWant = want;
      best = i;
    }
  }
  if (best < 0) return Response.of(<f64>req.current, "no metric has a value: holding current replicas");
  const replicas: u32 = bestWant >= 4294967295 ? 4294967295 : <u32>bestWant;
  return Response.of(<f64>replicas, req.metrics[best].name + ": " + replicas.toString() + " pods for the latest load");
}

setDecide(decide);
setInit(init);
