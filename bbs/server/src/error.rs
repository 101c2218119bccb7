//! The one error type of the `bbs` crate. Each variant is one BBS answer:
//! an `Error{type, message}` inside the route's HTTP 200 response (what Cloud
//! Controller reads), except [`Error::Unavailable`], which is an HTTP 503 as
//! a BBS answers while it cannot serve.
//!
//! Cloud Controller matches two messages byte for byte ("the requested
//! resource already exists", "the requested resource could not be found":
//! its process sync ignores those), so they are the BBS's canonical texts
//! ([`RESOURCE_EXISTS`], [`RESOURCE_NOT_FOUND`]), never decorated.

use bbs_models::error::Type;

use crate::translate::Refusal;

/// The BBS's message for [`Type::ResourceNotFound`].
pub const RESOURCE_NOT_FOUND: &str = "the requested resource could not be found";
/// The BBS's message for [`Type::ResourceExists`].
pub const RESOURCE_EXISTS: &str = "the requested resource already exists";
/// The BBS's message for a body that is not the route's protobuf message.
pub const BAD_REQUEST: &str = "the request received is invalid";

/// What went wrong with a BBS request, or with starting the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body does not decode as the route's request message
    /// (InvalidRequest, [`BAD_REQUEST`], as the BBS answers it).
    #[error("{BAD_REQUEST}")]
    Undecodable(#[source] prost::DecodeError),
    /// The body is larger than the service reads (InvalidRequest).
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request fails validation; the message is the BBS's
    /// (`Invalid field: process_guid`, joined with `, `) (InvalidRequest).
    #[error("{0}")]
    Invalid(String),
    /// What Cloud Controller sent cannot be run by Cube (InvalidRequest).
    #[error("{0}")]
    Refused(Refusal),
    /// No such LRP, instance or task (ResourceNotFound, [`RESOURCE_NOT_FOUND`]).
    #[error("{RESOURCE_NOT_FOUND}")]
    NotFound,
    /// The LRP or task exists already (ResourceExists, [`RESOURCE_EXISTS`]).
    #[error("{RESOURCE_EXISTS}")]
    Exists,
    /// A task cannot move to the state asked for
    /// (InvalidStateTransition, `Cannot transition from Completed to Completed`).
    #[error("Cannot transition from {from} to {to}")]
    Transition {
        /// The task's state now.
        from: &'static str,
        /// The state asked for.
        to: &'static str,
    },
    /// The scheduler cannot be reached now: HTTP 503, which Cloud Controller
    /// reports as RunnerUnavailable / InstancesUnavailable /
    /// TaskWorkersUnavailable and retries later.
    #[error("the scheduler is unavailable: {0}")]
    Unavailable(String),
    /// The droplet's image could not be put into the Registry (UnknownError).
    #[error("cannot import droplet {droplet} into the registry: {why}")]
    Droplet {
        /// `<guid>:<hash>`.
        droplet: String,
        /// Why.
        why: String,
    },
    /// What the scheduler holds cannot be written as a BBS model
    /// (UnknownError).
    #[error("cannot answer in the BBS's terms: {0}")]
    Untranslatable(Refusal),
    /// The request body could not be read (UnknownError).
    #[error("cannot read the request body: {0}")]
    Read(String),
    /// The scheduler failed otherwise (UnknownError, its message).
    #[error("{0}")]
    Scheduler(opi::Error),
    /// The service cannot start: configuration, listener, metrics.
    #[error("{0}")]
    Config(String),
    /// The server failed.
    #[error(transparent)]
    Serve(#[from] cube_runtime::Error),
}

impl From<Refusal> for Error {
    /// What CC sent cannot be translated: InvalidRequest, naming the field.
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<opi::Error> for Error {
    /// `NotFound` → ResourceNotFound; `Conflict` → ResourceExists; a field
    /// out of range, a bad body or what the backend does not support →
    /// InvalidRequest; `Unavailable` → 503; the rest → UnknownError.
    fn from(error: opi::Error) -> Self {
        match error {
            opi::Error::NotFound(_) => Self::NotFound,
            opi::Error::Conflict(_) => Self::Exists,
            opi::Error::Invalid(_)
            | opi::Error::BadBody(_)
            | opi::Error::NotSupported(_)
            | opi::Error::PayloadTooLarge { .. } => Self::Invalid(error.to_string()),
            opi::Error::Unavailable(why) => Self::Unavailable(why),
            opi::Error::Internal(_) => Self::Scheduler(error),
        }
    }
}

impl Error {
    /// The BBS error type this error answers with.
    pub fn kind(&self) -> Type {
        match self {
            Self::Undecodable(_) | Self::TooLarge { .. } | Self::Invalid(_) | Self::Refused(_) => {
                Type::InvalidRequest
            }
            Self::NotFound => Type::ResourceNotFound,
            Self::Exists => Type::ResourceExists,
            Self::Transition { .. } => Type::InvalidStateTransition,
            Self::Unavailable(_)
            | Self::Untranslatable(_)
            | Self::Read(_)
            | Self::Droplet { .. }
            | Self::Scheduler(_)
            | Self::Config(_)
            | Self::Serve(_) => Type::UnknownError,
        }
    }

    /// The error as the BBS writes it into a response's `error` field.
    pub fn to_bbs(&self) -> bbs_models::Error {
        bbs_models::Error {
            r#type: self.kind() as i32,
            message: self.to_string(),
        }
    }

    /// The `error` label of `cube_bbs_requests_total`: the BBS type's name,
    /// or `Unavailable` for an HTTP 503.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "Unavailable",
            _ => self.kind().as_str_name(),
        }
    }
}

/// A BBS validation failure: its items (`Invalid field: <name>`) joined
/// with `, ` as the BBS's `ValidationError` prints them.
#[derive(Debug, Default)]
pub struct Validation(Vec<String>);

impl Validation {
    /// Adds `Invalid field: <field>` when `bad`.
    pub fn field(mut self, bad: bool, field: &str) -> Self {
        if bad {
            self.0.push(format!("Invalid field: {field}"));
        }
        self
    }

    /// Adds `item` as it is when `bad`.
    pub fn item(mut self, bad: bool, item: &str) -> Self {
        if bad {
            self.0.push(item.to_owned());
        }
        self
    }

    /// Adds every item of `other` (a nested message's failures).
    pub fn nested(mut self, other: Validation) -> Self {
        self.0.extend(other.0);
        self
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was added, else [`Error::Invalid`].
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self.0.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_texts_are_the_bbs_own() {
        assert_eq!(
            Error::NotFound.to_bbs(),
            bbs_models::Error {
                r#type: Type::ResourceNotFound as i32,
                message: "the requested resource could not be found".into(),
            }
        );
        assert_eq!(
            Error::Exists.to_bbs(),
            bbs_models::Error {
                r#type: Type::ResourceExists as i32,
                message: "the requested resource already exists".into(),
            }
        );
    }

    #[test]
    fn scheduler_errors_map_to_bbs_types() {
        let cases = [
            (opi::Error::NotFound("LRP x".into()), Type::ResourceNotFound),
            (opi::Error::Conflict("task t".into()), Type::ResourceExists),
            (opi::Error::BadBody("no".into()), Type::InvalidRequest),
            (
                opi::Error::NotSupported("docker".into()),
                Type::InvalidRequest,
            ),
            (opi::Error::Internal("boom".into()), Type::UnknownError),
        ];
        for (error, kind) in cases {
            assert_eq!(Error::from(error.clone()).kind(), kind, "{error}");
        }
        let unavailable = Error::from(opi::Error::Unavailable("down".into()));
        assert!(matches!(unavailable, Error::Unavailable(_)));
        assert_eq!(unavailable.metric_label(), "Unavailable");
        // CC matches only the canonical text: the backend's own words stay out.
        assert_eq!(
            Error::from(opi::Error::NotFound("LRP x".into())).to_string(),
            RESOURCE_NOT_FOUND
        );
    }

    #[test]
    fn validation_joins_items_as_the_bbs() {
        let failed = Validation::default()
            .field(true, "process_guid")
            .field(false, "index")
            .field(true, "domain")
            .finish();
        let Err(Error::Invalid(message)) = failed else {
            panic!("expected Invalid, got {failed:?}");
        };
        assert_eq!(
            message,
            "Invalid field: process_guid, Invalid field: domain"
        );
        assert!(Validation::default().field(false, "x").finish().is_ok());
    }

    #[test]
    fn transition_reads_as_the_bbs() {
        let error = Error::Transition {
            from: "Completed",
            to: "Completed",
        };
        assert_eq!(
            error.to_string(),
            "Cannot transition from Completed to Completed"
        );
        assert_eq!(error.kind(), Type::InvalidStateTransition);
    }
}
