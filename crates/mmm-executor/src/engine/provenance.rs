//! Provenance: the header naming the cluster a record was first produced on,
//! and the rule that keeps two-way mirroring from looping: a record whose
//! provenance names the target cluster came from there and is not mirrored
//! back.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use mmm_core::task_data::{TaskData, PROVENANCE_HEADER};
use rdkafka::client::{Client, ClientContext};
use rdkafka::message::{BorrowedHeaders, Header, Headers, OwnedHeaders};

use super::EngineError;

/// The two cluster names, resolved once before the first record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Provenance {
    /// Written on records that carry no provenance yet.
    source: String,
    /// Records whose provenance is this are not mirrored.
    target: String,
}

/// What becomes of one consumed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It came from the target cluster: not mirrored.
    Skip,
    /// It already names its origin (an earlier hop): its headers go as they are.
    Keep,
    /// It was produced on the source: the source's name is added.
    Add,
}

/// Why a cluster's name could not be found out.
#[derive(Debug)]
pub(super) enum NameError {
    /// The cluster did not answer in time: worth another try.
    Unreachable(String),
    /// The cluster answers but reports no id: only an alias can name it.
    Permanent(EngineError),
}

impl Provenance {
    pub(super) fn new(source: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            target: target.into(),
        }
    }

    /// The names of the task's two clusters: each alias when set, else the
    /// cluster id the cluster's metadata reports.
    pub(super) fn resolve<S: ClientContext, T: ClientContext>(
        task: &TaskData,
        source: &Client<S>,
        target: &Client<T>,
        timeout: Duration,
    ) -> Result<Self, NameError> {
        let source_name = cluster_name(
            source,
            task.source_cluster_alias.as_deref(),
            "source",
            "source_cluster_alias",
            timeout,
        )?;
        let target_name = cluster_name(
            target,
            task.target_cluster_alias.as_deref(),
            "target",
            "target_cluster_alias",
            timeout,
        )?;
        Ok(Self::new(source_name, target_name))
    }

    /// The name written on records produced on the source.
    pub(super) fn source(&self) -> &str {
        &self.source
    }

    /// The target's name: records carrying it are not mirrored.
    pub(super) fn target(&self) -> &str {
        &self.target
    }

    /// Whether a record with these headers is mirrored, and how.
    pub(super) fn judge(&self, headers: Option<&BorrowedHeaders>) -> Verdict {
        match headers.and_then(origin) {
            None => Verdict::Add,
            Some(origin) if origin == Some(self.target.as_bytes()) => Verdict::Skip,
            Some(_) => Verdict::Keep,
        }
    }

    /// The headers of the mirrored record, by `verdict` (not `Skip`): the
    /// source's copied (librdkafka needs its own), plus the source's name
    /// when the record carries no provenance.
    pub(super) fn headers(
        &self,
        headers: Option<&BorrowedHeaders>,
        verdict: Verdict,
    ) -> Option<OwnedHeaders> {
        let copied = headers
            .filter(|h| h.count() > 0)
            .map(BorrowedHeaders::detach);
        if verdict != Verdict::Add {
            return copied;
        }
        let ours = Header {
            key: PROVENANCE_HEADER,
            value: Some(self.source.as_str()),
        };
        Some(
            copied
                .unwrap_or_else(|| OwnedHeaders::new_with_capacity(1))
                .insert(ours),
        )
    }
}

/// The value of the record's first provenance header (`Some(None)`: one
/// without a value), `None` when it has none.
fn origin(headers: &BorrowedHeaders) -> Option<Option<&[u8]>> {
    (0..headers.count()).find_map(|i| {
        // rdkafka panics on a header name that is not UTF-8 (possible from
        // a non-Java producer): such a header is not ours, and the records
        // it rides on must not stop the task.
        let header = catch_unwind(AssertUnwindSafe(|| headers.try_get(i))).ok()??;
        (header.key == PROVENANCE_HEADER).then_some(header.value)
    })
}

/// A cluster's name: the alias when set, else the cluster id from its metadata.
fn cluster_name<C: ClientContext>(
    client: &Client<C>,
    alias: Option<&str>,
    cluster: &'static str,
    alias_key: &'static str,
    timeout: Duration,
) -> Result<String, NameError> {
    if let Some(alias) = alias {
        return Ok(alias.to_owned());
    }
    if let Some(id) = client.fetch_cluster_id(timeout).filter(|id| !id.is_empty()) {
        return Ok(id);
    }
    // librdkafka answers nothing both when the cluster is unreachable and
    // when its brokers report no id (older than Kafka 0.10.1): a metadata
    // request tells the two apart.
    match client.fetch_metadata(None, timeout) {
        Ok(_) => match client.fetch_cluster_id(timeout).filter(|id| !id.is_empty()) {
            // The first request was only slow: the id came with this metadata.
            Some(id) => Ok(id),
            None => Err(NameError::Permanent(EngineError::NoClusterId {
                cluster,
                alias_key,
            })),
        },
        Err(err) => Err(NameError::Unreachable(format!(
            "the {cluster} cluster's id (for provenance headers) is unknown: {err}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, Option<&[u8]>)]) -> OwnedHeaders {
        list.iter().fold(OwnedHeaders::new(), |h, (key, value)| {
            h.insert(Header { key, value: *value })
        })
    }

    fn listed(h: &OwnedHeaders) -> Vec<(String, Option<Vec<u8>>)> {
        h.as_borrowed()
            .iter()
            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
            .collect()
    }

    #[test]
    fn records_from_the_target_stay_and_others_keep_or_get_their_origin() {
        let p = Provenance::new("east", "west");
        let own = headers(&[("a", Some(b"1")), ("b", None)]);
        let far = headers(&[(PROVENANCE_HEADER, Some(b"north")), ("a", Some(b"1"))]);
        let back = headers(&[("a", Some(b"1")), (PROVENANCE_HEADER, Some(b"west"))]);
        let empty = headers(&[]);
        let nameless = headers(&[(PROVENANCE_HEADER, None)]);

        assert_eq!(p.judge(None), Verdict::Add);
        assert_eq!(p.judge(Some(empty.as_borrowed())), Verdict::Add);
        assert_eq!(p.judge(Some(own.as_borrowed())), Verdict::Add);
        assert_eq!(p.judge(Some(far.as_borrowed())), Verdict::Keep);
        assert_eq!(p.judge(Some(nameless.as_borrowed())), Verdict::Keep);
        assert_eq!(p.judge(Some(back.as_borrowed())), Verdict::Skip);
        // The target's name must match whole: a prefix is another cluster.
        let prefix = headers(&[(PROVENANCE_HEADER, Some(b"wes"))]);
        assert_eq!(p.judge(Some(prefix.as_borrowed())), Verdict::Keep);

        let out = p
            .headers(Some(own.as_borrowed()), Verdict::Add)
            .expect("headers");
        assert_eq!(
            listed(&out),
            vec![
                ("a".into(), Some(b"1".to_vec())),
                ("b".into(), None),
                (PROVENANCE_HEADER.into(), Some(b"east".to_vec())),
            ]
        );
        let out = p.headers(None, Verdict::Add).expect("headers");
        assert_eq!(
            listed(&out),
            vec![(PROVENANCE_HEADER.into(), Some(b"east".to_vec()))]
        );
        let out = p
            .headers(Some(far.as_borrowed()), Verdict::Keep)
            .expect("headers");
        assert_eq!(listed(&out), listed(&far));
    }
}
