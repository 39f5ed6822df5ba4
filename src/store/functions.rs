//! The replicated function libraries in the store: local FUNCTION writes
//! become [`Op::Library`] deltas in the command's batch, remote ones are
//! applied with the batch, and a generation counter tells the scripting
//! engine (which compiles the code, per node) when to follow. The merge
//! rule is [`crate::crdt::functions`]'s.

use bytes::Bytes;

use super::{Op, Presence, Store};
use crate::crdt::{Dot, FunctionLibraries, LibraryDelta};

impl Store {
    /// The replicated libraries.
    pub fn function_libraries(&self) -> &FunctionLibraries {
        &self.functions
    }

    /// Changes whenever [`Store::function_libraries`] does.
    pub fn functions_generation(&self) -> u64 {
        self.functions_generation
    }

    /// FUNCTION LOAD (`Some(code)`) or DELETE (`None`) of `name`, in the
    /// open batch.
    pub fn write_library(&mut self, name: &str, code: Option<Bytes>) {
        self.open_batch();
        self.last_seq += 1;
        let dot = Dot::new(self.replica, self.last_seq);
        let delta = self.functions.delta_write(name, code, self.open.hlc, dot);
        self.push_library_delta(delta);
    }

    /// FUNCTION FLUSH: removes every library version this node has seen.
    pub fn flush_libraries(&mut self) {
        self.open_batch();
        // Every dot this node drew is seen here, including those of the
        // open batch that the context records only when it closes.
        let mut seen = self.ctx.version_vector().clone();
        seen.raise(self.replica, self.last_seq);
        let delta = FunctionLibraries::delta_flush(&seen);
        self.push_library_delta(delta);
    }

    fn push_library_delta(&mut self, delta: LibraryDelta) {
        self.apply_library_delta(&delta);
        self.open.ops.push(Op::Library(delta));
        self.open.presence.push(Presence::default());
    }

    pub(super) fn apply_library_delta(&mut self, delta: &LibraryDelta) {
        self.functions.apply(delta, &mut self.ctx);
        self.functions_generation += 1;
    }

    /// Joins a peer's libraries (read when its context was `sender_ctx`)
    /// into this node's, recording the dots adopted.
    pub fn merge_remote_libraries(
        &mut self,
        theirs: &FunctionLibraries,
        sender_ctx: &crate::crdt::CausalContext,
    ) {
        let joined = self.functions.join(&self.ctx, theirs, sender_ctx);
        if joined != self.functions {
            self.functions = joined;
            self.functions_generation += 1;
        }
        let ctx = &mut self.ctx;
        self.functions.for_each_dot(&mut |dot| ctx.insert(dot));
    }

    /// Replaces the libraries (a snapshot being restored).
    pub(super) fn restore_libraries(&mut self, functions: FunctionLibraries) {
        self.functions = functions;
        self.functions_generation += 1;
    }
}
