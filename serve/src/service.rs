//! KEDA's `ExternalScaler` gRPC service over a [`Scaler`].

use crate::auth::{Auth, Caller};
use crate::metadata::METRIC_NAME;
use crate::proto::external_scaler_server::ExternalScaler;
use crate::proto::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec,
    MetricValue, ScaledObjectRef,
};
use crate::scaler::{Answer, ScaleError, Scaler};
use crate::telemetry::RpcLabels;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// The gRPC service.
#[derive(Clone)]
pub struct Service {
    scaler: Arc<Scaler>,
    auth: Arc<Auth>,
    stream_interval: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
    /// One permit per open `StreamIsActive` stream, from everyone.
    streams: Arc<tokio::sync::Semaphore>,
}

impl Service {
    /// The service over `scaler`; `StreamIsActive` re-checks every `stream_interval` and ends
    /// its streams when `stop` turns true (shutdown).
    pub fn new(
        scaler: Arc<Scaler>,
        auth: Auth,
        stream_interval: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Service {
        let streams = Arc::new(tokio::sync::Semaphore::new(
            scaler.settings().quotas.streams,
        ));
        Service {
            scaler,
            auth: Arc::new(auth),
            stream_interval,
            stop,
            streams,
        }
    }

    async fn answer(&self, caller: &Caller, object: &ScaledObjectRef) -> Result<Answer, Status> {
        self.scaler
            .desired(
                caller,
                &object.namespace,
                &object.name,
                &object.scaler_metadata,
            )
            .await
            .map_err(to_status)
    }

    fn observe<T>(&self, rpc: &str, start: Instant, result: &Result<T, Status>) {
        let code = match result {
            Ok(_) => "ok".to_string(),
            Err(s) => format!("{:?}", s.code()),
        };
        self.scaler
            .telemetry()
            .rpc_seconds
            .get_or_create(&RpcLabels {
                rpc: rpc.to_string(),
                code,
            })
            .observe(start.elapsed().as_secs_f64());
    }
}

/// The gRPC status for a scaler error: InvalidArgument names the key or field,
/// ResourceExhausted the cap, Unavailable says why.
pub fn to_status(e: ScaleError) -> Status {
    match e {
        ScaleError::Metadata(m) => Status::invalid_argument(m.to_string()),
        ScaleError::Name(n) => Status::invalid_argument(n.to_string()),
        ScaleError::Quota(q) => Status::resource_exhausted(q.to_string()),
        ScaleError::Unavailable(why) => Status::unavailable(why),
    }
}

/// The metric name of a trigger: its `metricName` metadata, or [`METRIC_NAME`].
fn metric_name(object: &ScaledObjectRef) -> String {
    object
        .scaler_metadata
        .get("metricName")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| METRIC_NAME.to_string())
}

type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ExternalScaler for Service {
    async fn is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        let start = Instant::now();
        let caller = self.auth.caller(&request)?;
        let result = self
            .answer(&caller, request.get_ref())
            .await
            .map(|a| Response::new(IsActiveResponse { result: a.active }));
        self.observe("IsActive", start, &result);
        result
    }

    type StreamIsActiveStream = Streamed<IsActiveResponse>;

    async fn stream_is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let caller = self.auth.caller(&request)?;
        let object = request.into_inner();
        let limit = self.scaler.settings().quotas.streams;
        let permit = self.streams.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "over the scaler's `limits.streams` ({limit}): StreamIsActive streams open; \
                 the ones open keep working"
            ))
        })?;
        // A bad trigger fails the call itself rather than the stream's first message.
        self.scaler
            .check(
                &caller,
                &object.namespace,
                &object.name,
                &object.scaler_metadata,
            )
            .await
            .map_err(to_status)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let service = self.clone();
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            // Held for the stream's life.
            let _permit = permit;
            let mut last: Option<bool> = None;
            loop {
                if *stop.borrow() {
                    return;
                }
                match service.answer(&caller, &object).await {
                    Ok(a) => {
                        let active = a.active;
                        // Push the first state, then only changes.
                        if last != Some(active) {
                            last = Some(active);
                            if tx
                                .send(Ok(IsActiveResponse { result: active }))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                    // No answer this round (Prometheus down with nothing held): say nothing,
                    // try again next round; the stream stays open.
                    Err(status) => tracing::debug!(%status, "StreamIsActive round without answer"),
                }
                // Shutdown ends the stream: dropping `tx` closes it with status OK.
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(service.stream_interval) => {}
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        let start = Instant::now();
        let caller = self.auth.caller(&request)?;
        let object = request.get_ref();
        let result = self
            .scaler
            .check(
                &caller,
                &object.namespace,
                &object.name,
                &object.scaler_metadata,
            )
            .await
            .map_err(to_status)
            .map(|_| {
                // A target of 1 per replica: KEDA's AverageValue HPA then computes
                // ceil(desired / 1) and lands on the policy's target.
                Response::new(GetMetricSpecResponse {
                    metric_specs: vec![MetricSpec {
                        metric_name: metric_name(object),
                        target_size: 1,
                        target_size_float: 1.0,
                    }],
                })
            });
        self.observe("GetMetricSpec", start, &result);
        result
    }

    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        let start = Instant::now();
        let caller = self.auth.caller(&request)?;
        let request = request.into_inner();
        let object = request
            .scaled_object_ref
            .ok_or_else(|| Status::invalid_argument("scaledObjectRef is required"))?;
        let name = if request.metric_name.is_empty() {
            metric_name(&object)
        } else {
            request.metric_name
        };
        let result = self.answer(&caller, &object).await.map(|a| {
            Response::new(GetMetricsResponse {
                metric_values: vec![MetricValue {
                    metric_name: name,
                    metric_value: i64::from(a.replicas),
                    metric_value_float: f64::from(a.replicas),
                }],
            })
        });
        self.observe("GetMetrics", start, &result);
        result
    }

    type StreamMetricSpecStream = Streamed<GetMetricSpecResponse>;

    async fn stream_metric_spec(
        &self,
        _request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamMetricSpecStream>, Status> {
        // The spec never changes (target 1), so KEDA's polling of GetMetricSpec is enough.
        Err(Status::unimplemented(
            "StreamMetricSpec: the metric spec is constant; KEDA polls GetMetricSpec",
        ))
    }
}
