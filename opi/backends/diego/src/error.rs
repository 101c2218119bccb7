//! [`DiegoError`], the one error type of this crate, and its mapping to
//! [`opi::Error`].

use crate::proto::error::Type;

/// What went wrong talking to the BBS or translating for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiegoError {
    /// The BBS answered with an `Error{type,message}` in its response.
    #[error("bbs: {message} ({})", kind.as_str_name())]
    Bbs {
        /// The BBS error type.
        kind: Type,
        /// The BBS message.
        message: String,
    },
    /// The BBS could not be reached, the connection broke, or it answered
    /// with an HTTP error status (overloaded, not the active BBS, …).
    #[error("bbs unreachable: {0}")]
    Unreachable(String),
    /// The BBS answered something that is not the expected protobuf.
    #[error("bbs sent an undecodable response: {0}")]
    Decode(String),
    /// The TLS material or URL given to the client is unusable.
    #[error("bbs client configuration: {0}")]
    Config(String),
    /// The request is valid OPI but cannot be expressed as a BBS record.
    #[error("{0}")]
    Unsupported(String),
    /// A BBS record does not have the shape Cube writes.
    #[error("unreadable bbs record: {0}")]
    Unreadable(String),
}

impl DiegoError {
    /// Whether the BBS said the record does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Bbs {
                kind: Type::ResourceNotFound,
                ..
            }
        )
    }

    /// Whether the BBS refused to move the record to the state asked for
    /// (e.g. resolving a task that is not `COMPLETED`).
    pub fn is_invalid_transition(&self) -> bool {
        matches!(
            self,
            Self::Bbs {
                kind: Type::InvalidStateTransition,
                ..
            }
        )
    }

    /// Whether the BBS said the record exists already.
    pub fn is_exists(&self) -> bool {
        matches!(
            self,
            Self::Bbs {
                kind: Type::ResourceExists,
                ..
            }
        )
    }
}

impl From<DiegoError> for opi::Error {
    fn from(error: DiegoError) -> Self {
        let text = error.to_string();
        match error {
            DiegoError::Bbs { kind, message } => match kind {
                Type::ResourceNotFound => Self::NotFound(message),
                Type::ResourceExists | Type::ResourceConflict | Type::InvalidStateTransition => {
                    Self::Conflict(message)
                }
                Type::InvalidRequest
                | Type::InvalidRecord
                | Type::InvalidProtobufMessage
                | Type::InvalidJson => Self::BadBody(text),
                Type::Unrecoverable | Type::Timeout | Type::Deadlock | Type::LockCollision => {
                    Self::Unavailable(text)
                }
                _ => Self::Internal(text),
            },
            DiegoError::Unreachable(_) => Self::Unavailable(text),
            DiegoError::Unsupported(message) => Self::NotSupported(message),
            DiegoError::Decode(_) | DiegoError::Config(_) | DiegoError::Unreadable(_) => {
                Self::Internal(text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bbs(kind: Type) -> opi::Error {
        DiegoError::Bbs {
            kind,
            message: "m".into(),
        }
        .into()
    }

    #[test]
    fn bbs_error_types_map_to_precise_opi_errors() {
        assert_eq!(
            bbs(Type::ResourceNotFound),
            opi::Error::NotFound("m".into())
        );
        assert_eq!(bbs(Type::ResourceExists), opi::Error::Conflict("m".into()));
        assert!(matches!(bbs(Type::InvalidRequest), opi::Error::BadBody(_)));
        assert!(matches!(bbs(Type::Deadlock), opi::Error::Unavailable(_)));
        assert!(matches!(bbs(Type::UnknownError), opi::Error::Internal(_)));
        let down: opi::Error = DiegoError::Unreachable("refused".into()).into();
        assert!(down.is_transient());
        let unsupported: opi::Error = DiegoError::Unsupported("no".into()).into();
        assert_eq!(unsupported, opi::Error::NotSupported("no".into()));
    }
}
