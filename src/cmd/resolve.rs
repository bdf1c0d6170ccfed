//! `tariscope-sync resolve REFERENCE --landed PAYMENTID | --not-landed`: a person settles a
//! payment the push left `ambiguous` (README, "Payments into Tariscope").

use chrono::SecondsFormat;

use super::out::Out;
use crate::config::Config;
use crate::daemon::Exit;
use crate::store::Store;
use crate::{errln, outln};

/// Records the person's verdict: `landed` is Tariscope's payment id of this payment, `None`
/// when it did not land (the next push sends it). Exit 0, or 1 with the reason.
pub async fn run(config: &Config, reference: &str, landed: Option<i64>, out: &mut Out) -> Exit {
    let store = match Store::open_configured(&config.mirror.path, config.mirror.postgres.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            errln!("tariscope-sync resolve: {e}");
            return Exit::Runtime;
        }
    };
    let now = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    match store
        .payment_resolve(reference.to_string(), landed, now)
        .await
    {
        Ok(Ok(done)) => {
            outln!(out, "{done}");
            Exit::Ok
        }
        Ok(Err(why)) => {
            errln!("tariscope-sync resolve: {why}");
            Exit::Runtime
        }
        Err(e) => {
            errln!("tariscope-sync resolve: {e}");
            Exit::Runtime
        }
    }
}
