//! The system methods of [`TariscopeClient`]: `tariscope.*` (with the summary's fallback
//! to the single methods), `claims` and `sql`.
//!
//! Owns: what these methods send and how an absent method or right is handled. Must
//! not: touch HTTP directly or read wire fields (`decode.rs`).

use super::client::TariscopeClient;
use super::decode;
use super::encode::Param;
use super::error::ApiError;
use super::methods::{decode_error, not_found};
use super::wire;
use crate::model::{SqlResult, SystemInfo};

/// The five single-value `tariscope.*` methods, by the field each returns.
const INFO_FIELDS: [&str; 5] = ["version", "database", "build", "serial", "edition"];

impl TariscopeClient {
    /// `tariscope.summary`; if the server lacks it (404/405/501/400) or the user may not
    /// call it, the five single methods; fields the summary lacks are asked singly too.
    /// If the summary and all five single methods are refused or missing, the summary's
    /// error is returned.
    pub async fn system_info(&self) -> Result<SystemInfo, ApiError> {
        const M: &str = "tariscope.summary";
        let mut first_error = None;
        let mut answered = false;
        let summary = match self.call(M, &[]).await {
            Ok(reply) if reply.status != 404 => {
                answered = true;
                self.one(M, &reply, decode::system_info)?
            }
            Ok(reply) => {
                first_error = Some(not_found(M, &reply));
                None
            }
            Err(e) if falls_back(&e) => {
                tracing::debug!(error = %e, "tariscope.summary unavailable; asking the single methods");
                first_error = Some(e);
                None
            }
            Err(e) => return Err(e),
        };
        let mut info = summary.unwrap_or_default();
        for field in INFO_FIELDS {
            let slot = match field {
                "version" => &mut info.version,
                "database" => &mut info.database,
                "build" => &mut info.build,
                "serial" => &mut info.serial,
                _ => &mut info.edition,
            };
            if slot.is_none() {
                match self.info(field).await {
                    Ok(v) => {
                        answered = true;
                        *slot = v;
                    }
                    Err(e) if falls_back(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        match first_error {
            Some(e) if !answered => Err(e),
            _ => Ok(info),
        }
    }

    async fn info(&self, field: &str) -> Result<Option<String>, ApiError> {
        let method = format!("tariscope.{field}");
        let reply = self.call(&method, &[]).await?;
        if reply.is_empty_result() {
            return Ok(None);
        }
        let value = match self.parse(&method, &reply) {
            Ok(value) => value,
            Err(e) => match plain_text(&reply.body) {
                Some(text) => serde_json::Value::String(text),
                None => return Err(e),
            },
        };
        match wire::single(&value) {
            None => Ok(None),
            Some(v) => decode::info_field(v, field).map_err(|e| decode_error(&method, &reply, e)),
        }
    }

    /// `tariscope.version`.
    pub async fn version(&self) -> Result<Option<String>, ApiError> {
        self.info("version").await
    }
    /// `tariscope.database`.
    pub async fn database(&self) -> Result<Option<String>, ApiError> {
        self.info("database").await
    }
    /// `tariscope.build` (the build date, `yyyy-mm-dd` when it is a date).
    pub async fn build(&self) -> Result<Option<String>, ApiError> {
        self.info("build").await
    }
    /// `tariscope.serial`.
    pub async fn serial(&self) -> Result<Option<String>, ApiError> {
        self.info("serial").await
    }
    /// `tariscope.edition`.
    pub async fn edition(&self) -> Result<Option<String>, ApiError> {
        self.info("edition").await
    }

    /// `claims`: the methods the configured user may call.
    pub async fn claims(&self) -> Result<Vec<String>, ApiError> {
        const M: &str = "claims";
        let reply = self.call(M, &[]).await?;
        if reply.status == 404 {
            return Err(not_found(M, &reply));
        }
        if reply.is_empty_result() {
            return Ok(Vec::new());
        }
        let value = self.parse(M, &reply)?;
        decode::claims(&value).map_err(|e| decode_error(M, &reply, e))
    }

    /// `sql` (not idempotent: the text may modify data).
    pub async fn sql(&self, query: &str) -> Result<SqlResult, ApiError> {
        const M: &str = "sql";
        let reply = self
            .call(M, &[("query", Param::Text(query.to_owned()))])
            .await?;
        if reply.status == 404 {
            return Err(not_found(M, &reply));
        }
        if reply.is_empty_result() {
            return Ok(SqlResult::default());
        }
        let value = self.parse(M, &reply)?;
        decode::sql(&value).map_err(|e| decode_error(M, &reply, e))
    }
}

/// A body that is neither JSON nor XML but one short line of text (`4.6.112`): a single-value
/// method answering in plain text.
fn plain_text(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let plain = !text.is_empty()
        && text.len() <= 200
        && !text.contains(['\n', '\r'])
        && !text.starts_with(['{', '[', '<']);
    plain.then(|| text.to_owned())
}

/// Errors after which `system_info` tries the other methods.
fn falls_back(e: &ApiError) -> bool {
    matches!(e, ApiError::Unauthorized { .. }) || matches!(e.status(), Some(400 | 404 | 405 | 501))
}
