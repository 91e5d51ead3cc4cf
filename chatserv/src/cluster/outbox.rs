//! The messages and logins of this node on their way through the stream.
//!
//! An entry stays here from the moment a user sends it until the reader
//! sees it come back from the Redis stream (its "ack"): the publisher may
//! have to write it again after a reconnection, and while Redis cannot be
//! reached the local users get it directly (`local_done`) instead of from
//! the stream, exactly once either way.
//!
//! The last [`HISTORY`] entries read back stay on as history: when Redis
//! comes back empty, this node writes them again before anything new, so
//! that a node whose reader had not got to them yet still gets them (the
//! others drop them as duplicates by sequence number) instead of seeing a
//! gap and closing its users with 4002.

use std::collections::VecDeque;
use std::sync::Arc;

/// Entries kept after they were read back, to write again if Redis loses
/// its stream (how far another node's reader may be behind this one's).
pub const HISTORY: usize = 1024;

/// What an entry carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A chat line, already formatted `"<msg> -- FROM <user>"`.
    Message(Arc<str>),
    /// A login: other nodes close their older session of the name.
    Login,
}

/// One entry of this node.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Per-node sequence number (with the node's boot id, the message id
    /// that makes publishing idempotent).
    pub seq: u64,
    /// The sender or the user logging in.
    pub user: Arc<str>,
    /// Its connection id on this node.
    pub conn: u64,
    /// What it is.
    pub kind: Kind,
    /// When it was submitted, in µs since the Unix epoch.
    pub micros: u64,
    /// The local users already have it (it was sent while Redis could not
    /// be reached): do not deliver it again when it comes back.
    pub local_done: bool,
    /// Written again from the history: not counted against the outbox's
    /// room (its users sent it long ago).
    pub replay: bool,
}

/// The queue of entries not yet read back from the stream.
#[derive(Debug)]
pub struct Outbox {
    entries: VecDeque<Entry>,
    /// The last [`HISTORY`] entries read back, oldest first, all
    /// `local_done`.
    history: VecDeque<Entry>,
    next_seq: u64,
    /// The publisher writes entries from this sequence number on.
    publish_from: u64,
    messages: usize,
    max_messages: usize,
}

impl Outbox {
    /// An empty outbox holding at most `max_messages` chat lines.
    pub fn new(max_messages: usize) -> Outbox {
        Outbox {
            entries: VecDeque::new(),
            history: VecDeque::new(),
            next_seq: 1,
            publish_from: 1,
            messages: 0,
            max_messages,
        }
    }

    /// Chat lines waiting.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// Whether another chat line fits.
    pub fn has_room(&self) -> bool {
        self.messages < self.max_messages
    }

    /// Append an entry; returns its sequence number. Logins are never
    /// refused (they are few and each is needed for a correct kick).
    pub fn push(
        &mut self,
        user: Arc<str>,
        conn: u64,
        kind: Kind,
        micros: u64,
        local_done: bool,
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if matches!(kind, Kind::Message(_)) {
            self.messages += 1;
        }
        self.entries.push_back(Entry {
            seq,
            user,
            conn,
            kind,
            micros,
            local_done,
            replay: false,
        });
        seq
    }

    /// Up to `max` entries the publisher has not written yet (in order).
    pub fn unpublished(&self, max: usize) -> Vec<Entry> {
        let start = self.entries.partition_point(|e| e.seq < self.publish_from);
        self.entries.range(start..).take(max).cloned().collect()
    }

    /// The publisher wrote everything up to `seq`.
    pub fn published(&mut self, seq: u64) {
        self.publish_from = self.publish_from.max(seq + 1);
    }

    /// After a reconnection: write again everything not yet read back (a
    /// write that timed out may or may not have reached Redis; the reader
    /// drops the duplicates).
    pub fn republish_all(&mut self) {
        self.publish_from = self.entries.front().map_or(self.next_seq, |e| e.seq);
    }

    /// The reader saw entry `seq` come back: remove it and the entries
    /// before it (which would have come back first; any that did not were
    /// lost with a trimmed or emptied stream). Returns them, oldest first.
    pub fn ack(&mut self, seq: u64) -> Vec<Entry> {
        let mut done = Vec::new();
        while let Some(e) = self.retire_front_if(|e| e.seq <= seq) {
            done.push(e);
        }
        self.publish_from = self.publish_from.max(seq + 1);
        done
    }

    /// Entry `seq` of this node came back again as a duplicate (a replayed
    /// one, or an idempotent retry): drop the replayed entries up to it
    /// (they were delivered and acknowledged before).
    pub fn drop_replayed(&mut self, seq: u64) {
        while self.retire_front_if(|e| e.replay && e.seq <= seq).is_some() {}
    }

    /// Take the front entry off the queue if `read_back` says it came
    /// back, keeping it in the history (delivered from now on).
    fn retire_front_if(&mut self, read_back: impl Fn(&Entry) -> bool) -> Option<Entry> {
        if !self.entries.front().is_some_and(read_back) {
            return None;
        }
        let e = self.entries.pop_front()?;
        if matches!(e.kind, Kind::Message(_)) && !e.replay {
            self.messages -= 1;
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Entry {
            local_done: true,
            ..e.clone()
        });
        Some(e)
    }

    /// Redis came back empty: put the history back in front of the queue,
    /// to be written again (in order, before anything not yet written).
    /// Returns how many entries that is.
    pub fn replay_history(&mut self) -> usize {
        let n = self.history.len();
        for mut e in self.history.drain(..).rev() {
            e.replay = true;
            self.entries.push_front(e);
        }
        self.publish_from = self.entries.front().map_or(self.next_seq, |e| e.seq);
        n
    }

    /// Mark every chat line the local users have not had yet as delivered,
    /// returning them in order (Redis just became unreachable: they are
    /// delivered directly, before any later message of the same sender).
    pub fn take_local(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        for e in self.entries.iter_mut() {
            if !e.local_done && matches!(e.kind, Kind::Message(_)) {
                e.local_done = true;
                out.push(e.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(o: &mut Outbox, text: &str, local: bool) -> u64 {
        o.push("u".into(), 1, Kind::Message(text.into()), 0, local)
    }

    #[test]
    fn publish_ack_and_republish() {
        let mut o = Outbox::new(3);
        let a = msg(&mut o, "a", false);
        let b = msg(&mut o, "b", false);
        assert_eq!(o.unpublished(10).len(), 2);
        o.published(b);
        assert!(o.unpublished(10).is_empty());
        // Reconnection: both are written again.
        o.republish_all();
        assert_eq!(o.unpublished(10).len(), 2);
        assert_eq!(o.ack(a).len(), 1);
        assert_eq!(o.unpublished(10).len(), 1);
        assert_eq!(o.messages(), 1);
        // A duplicate ack removes nothing.
        assert!(o.ack(a).is_empty());
    }

    #[test]
    fn bounded() {
        let mut o = Outbox::new(2);
        msg(&mut o, "a", false);
        assert!(o.has_room());
        msg(&mut o, "b", false);
        assert!(!o.has_room());
        o.push("u".into(), 1, Kind::Login, 0, true);
        assert_eq!(o.messages(), 2);
    }

    #[test]
    fn history_is_written_again_first_and_delivered_once() {
        let mut o = Outbox::new(2);
        let a = msg(&mut o, "a", false);
        let b = msg(&mut o, "b", false);
        o.published(b);
        assert_eq!(o.ack(a).len(), 1);
        let c = msg(&mut o, "c", false);
        // Redis lost its stream: a (read back) goes out again before b and
        // c, and does not count against the room.
        assert_eq!(o.replay_history(), 1);
        let order: Vec<_> = o.unpublished(10).iter().map(|e| e.seq).collect();
        assert_eq!(order, [a, b, c]);
        assert_eq!(o.messages(), 2);
        // Back from the stream: a was delivered locally long ago.
        let acked = o.ack(c);
        assert!(acked[0].local_done && acked[0].replay);
        assert!(!acked[1].local_done && !acked[2].local_done);
        assert_eq!(o.messages(), 0);
        assert!(o.unpublished(10).is_empty());
        // The history holds each entry once, all delivered.
        assert_eq!(o.replay_history(), 3);
        assert!(o.unpublished(10).iter().all(|e| e.local_done));
        // Replayed entries that come back as duplicates leave the queue,
        // and stay in the history for another loss of the stream.
        o.drop_replayed(b);
        let left: Vec<_> = o.unpublished(10).iter().map(|e| e.seq).collect();
        assert_eq!(left, [c]);
        o.ack(c);
        assert_eq!(o.replay_history(), 3);
    }

    #[test]
    fn history_is_bounded() {
        let mut o = Outbox::new(HISTORY + 10);
        for i in 0..HISTORY + 5 {
            msg(&mut o, &i.to_string(), false);
        }
        o.ack((HISTORY + 5) as u64);
        assert_eq!(o.replay_history(), HISTORY);
        assert_eq!(o.unpublished(1)[0].seq, 6);
    }

    #[test]
    fn take_local_once() {
        let mut o = Outbox::new(10);
        msg(&mut o, "a", false);
        msg(&mut o, "b", true);
        msg(&mut o, "c", false);
        let l: Vec<_> = o.take_local().iter().map(|e| e.seq).collect();
        assert_eq!(l, [1, 3]);
        assert!(o.take_local().is_empty());
        assert!(o.ack(3).iter().all(|e| e.local_done));
    }
}
