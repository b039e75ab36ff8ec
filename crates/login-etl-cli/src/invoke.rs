//! `invoke`: the function's own entry point on an event file.

use std::io::Write;

use anyhow::Context;

use super::InvokeArgs;
use login_etl::{Function, Request};

/// Runs [`Function::invoke`], the runtime's path, on the SQS event in `args.file`: the
/// `SQSBatchResponse` goes to `out`, the EMF metrics lines the runtime would log to `metrics`.
pub async fn invoke(
    args: &InvokeArgs,
    function: &Function,
    out: &mut impl Write,
    metrics: &mut (impl Write + Send),
) -> anyhow::Result<()> {
    let file = &args.file;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let event = login_etl::parse_event(&text).with_context(|| format!("{}", file.display()))?;
    let request = Request { id: "login-etl-cli-invoke", xray_trace_id: None };
    let response = function.invoke(event, request, metrics).await.map_err(|err| anyhow::anyhow!(err))?;
    writeln!(out, "{}", serde_json::to_string_pretty(&response)?)?;
    Ok(())
}
