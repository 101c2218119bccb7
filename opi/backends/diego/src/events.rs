//! The BBS event streams: server-sent events whose `event:` names the type and
//! whose `data:` is the base64 protobuf of that event.
//!
//! [`SseParser`] turns bytes into frames (pure, fed chunk by chunk);
//! [`BbsEvent::decode`] turns a frame into a typed event; [`stream`] does both
//! over a response body.

use base64::Engine;
use futures::stream::{BoxStream, StreamExt};
use prost::Message;

use crate::error::DiegoError;
use crate::proto;

/// The instance event stream (ActualLRP changes, crashes, desired LRP changes).
pub const LRP_INSTANCES_PATH: &str = "/v1/events/lrp_instances.r1";
/// The task event stream.
pub const TASKS_PATH: &str = "/v1/events/tasks.r1";

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    /// `id:`.
    pub id: String,
    /// `event:` (the BBS event type).
    pub event: String,
    /// `data:` lines joined by `\n`.
    pub data: String,
}

/// The largest line or frame the parser keeps (a BBS event is a few KiB);
/// past it the parser is [`SseParser::oversized`] and the stream ends.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// An incremental SSE parser (the subset BBS uses: `id`, `event`, `data`,
/// comments; LF or CRLF line ends).
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    /// Bytes of `buffer` known to hold no line end.
    scanned: usize,
    frame: Frame,
    has_data: bool,
    oversized: bool,
}

impl SseParser {
    /// Whether a line or frame went over [`MAX_FRAME_BYTES`]: what was
    /// pending is dropped and nothing more is parsed.
    pub fn oversized(&self) -> bool {
        self.oversized
    }

    /// Feeds `chunk`, returning the frames it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Frame> {
        if self.oversized {
            return Vec::new();
        }
        self.buffer.extend_from_slice(chunk);
        let mut frames = Vec::new();
        while let Some(offset) = self.buffer[self.scanned..].iter().position(|b| *b == b'\n') {
            let end = self.scanned + offset;
            self.scanned = 0;
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() {
                if self.has_data || !self.frame.event.is_empty() {
                    frames.push(std::mem::take(&mut self.frame));
                }
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_str(), ""),
            };
            match field {
                "id" => self.frame.id = value.to_owned(),
                "event" => self.frame.event = value.to_owned(),
                "data" => {
                    if self.has_data {
                        self.frame.data.push('\n');
                    }
                    self.frame.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        self.scanned = self.buffer.len();
        if self.buffer.len() > MAX_FRAME_BYTES || self.frame.data.len() > MAX_FRAME_BYTES {
            self.oversized = true;
            self.buffer = Vec::new();
            self.frame = Frame::default();
        }
        frames
    }
}

/// A decoded BBS event Cube acts on; the rest are [`BbsEvent::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum BbsEvent {
    /// `actual_lrp_crashed`.
    Crashed(Box<proto::ActualLrpCrashedEvent>),
    /// `actual_lrp_instance_created`.
    InstanceCreated(Box<proto::ActualLrpInstanceCreatedEvent>),
    /// `actual_lrp_instance_changed`.
    InstanceChanged(Box<proto::ActualLrpInstanceChangedEvent>),
    /// `actual_lrp_instance_removed`.
    InstanceRemoved(Box<proto::ActualLrpInstanceRemovedEvent>),
    /// `task_created`.
    TaskCreated(Box<proto::TaskCreatedEvent>),
    /// `task_changed`.
    TaskChanged(Box<proto::TaskChangedEvent>),
    /// `task_removed`.
    TaskRemoved(Box<proto::TaskRemovedEvent>),
    /// Any other type (desired LRP events, future ones), by name.
    Other(String),
}

fn decode<M: Message + Default>(event: &str, bytes: &[u8]) -> Result<Box<M>, DiegoError> {
    M::decode(bytes)
        .map(Box::new)
        .map_err(|e| DiegoError::Decode(format!("event {event}: {e}")))
}

impl BbsEvent {
    /// Decodes a frame's base64 protobuf payload by its event type.
    pub fn decode(frame: &Frame) -> Result<Self, DiegoError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(frame.data.trim())
            .map_err(|e| DiegoError::Decode(format!("event {}: base64: {e}", frame.event)))?;
        let name = frame.event.as_str();
        Ok(match name {
            "actual_lrp_crashed" => Self::Crashed(decode(name, &bytes)?),
            "actual_lrp_instance_created" => Self::InstanceCreated(decode(name, &bytes)?),
            "actual_lrp_instance_changed" => Self::InstanceChanged(decode(name, &bytes)?),
            "actual_lrp_instance_removed" => Self::InstanceRemoved(decode(name, &bytes)?),
            "task_created" => Self::TaskCreated(decode(name, &bytes)?),
            "task_changed" => Self::TaskChanged(decode(name, &bytes)?),
            "task_removed" => Self::TaskRemoved(decode(name, &bytes)?),
            other => Self::Other(other.to_owned()),
        })
    }
}

/// The events of an open event-stream response, until it ends or breaks
/// (a broken stream yields one [`DiegoError::Unreachable`] and ends).
pub fn stream(response: reqwest::Response) -> BoxStream<'static, Result<BbsEvent, DiegoError>> {
    let body = response.bytes_stream();
    futures::stream::unfold(
        (
            body,
            SseParser::default(),
            std::collections::VecDeque::new(),
            false,
        ),
        |(mut body, mut parser, mut ready, mut done)| async move {
            loop {
                if let Some(event) = ready.pop_front() {
                    return Some((event, (body, parser, ready, done)));
                }
                if done {
                    return None;
                }
                match body.next().await {
                    Some(Ok(chunk)) => {
                        ready.extend(parser.feed(&chunk).iter().map(BbsEvent::decode));
                        if parser.oversized() {
                            // The events before it still count; then the error.
                            done = true;
                            ready.push_back(Err(DiegoError::Decode(format!(
                                "event stream: an event over {MAX_FRAME_BYTES} bytes"
                            ))));
                        }
                    }
                    Some(Err(e)) => {
                        done = true;
                        let error = DiegoError::Unreachable(format!("event stream broke: {e}"));
                        return Some((Err(error), (body, parser, ready, done)));
                    }
                    None => return None,
                }
            }
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_endless_line_stops_the_parser_at_the_limit() {
        let mut parser = SseParser::default();
        let frames = parser.feed(b"id: 0\nevent: task_changed\ndata: AAEC\n\n");
        assert_eq!(frames.len(), 1);
        let chunk = vec![b'a'; 1 << 20];
        let mut fed = 0;
        while !parser.oversized() {
            assert!(parser.feed(&chunk).is_empty());
            fed += chunk.len();
            assert!(fed <= MAX_FRAME_BYTES + chunk.len(), "never stopped");
        }
        assert!(parser.buffer.capacity() == 0, "the pending line was kept");
        assert!(parser.feed(b"\n\nid: 1\nevent: x\n\n").is_empty());
    }

    #[test]
    fn parses_bbs_frames_split_anywhere() {
        let text = "id: 0\nevent: task_changed\ndata: AAEC\n\n: keep-alive\r\nid: 1\r\nevent: actual_lrp_crashed\r\ndata: Zm9v\r\n\r\n";
        for split in 0..text.len() {
            let mut parser = SseParser::default();
            let mut frames = parser.feed(&text.as_bytes()[..split]);
            frames.extend(parser.feed(&text.as_bytes()[split..]));
            assert_eq!(
                frames,
                [
                    Frame {
                        id: "0".into(),
                        event: "task_changed".into(),
                        data: "AAEC".into()
                    },
                    Frame {
                        id: "1".into(),
                        event: "actual_lrp_crashed".into(),
                        data: "Zm9v".into()
                    },
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn decodes_events_by_type() {
        let crash = proto::ActualLrpCrashedEvent {
            crash_count: 2,
            crash_reason: "Exited with status 1".into(),
            ..proto::ActualLrpCrashedEvent::default()
        };
        let frame = Frame {
            id: "7".into(),
            event: "actual_lrp_crashed".into(),
            data: base64::engine::general_purpose::STANDARD.encode(crash.encode_to_vec()),
        };
        assert_eq!(
            BbsEvent::decode(&frame),
            Ok(BbsEvent::Crashed(Box::new(crash)))
        );
        let other = Frame {
            event: "desired_lrp_created".into(),
            ..Frame::default()
        };
        assert_eq!(
            BbsEvent::decode(&other),
            Ok(BbsEvent::Other("desired_lrp_created".into()))
        );
        let broken = Frame {
            event: "task_changed".into(),
            data: "not base64!".into(),
            ..Frame::default()
        };
        assert!(matches!(
            BbsEvent::decode(&broken),
            Err(DiegoError::Decode(_))
        ));
    }

    proptest! {
        /// Any sequence of frames, cut into any chunks, parses back.
        #[test]
        fn frames_survive_any_chunking(
            frames in proptest::collection::vec(("[a-z_]{1,12}", "[A-Za-z0-9+/=]{0,40}"), 0..6),
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let text: String = frames
                .iter()
                .enumerate()
                .map(|(i, (event, data))| format!("id: {i}\nevent: {event}\ndata: {data}\n\n"))
                .collect();
            let bytes = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut parser = SseParser::default();
            let mut got = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                got.extend(parser.feed(&bytes[from..cut]));
                from = cut;
            }
            let want: Vec<Frame> = frames
                .iter()
                .enumerate()
                .map(|(i, (event, data))| Frame { id: i.to_string(), event: event.clone(), data: data.clone() })
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
