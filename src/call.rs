//! The names of the operations a rank can be blocked in: one enum for the reports of
//! the engine, the collectives' signature check and the launcher's deadlock report.
//!
//! A call's code (`Call as u8`) is published in shared memory (the wait record's
//! `name`, a collective's signature word), so the launcher and every rank read it the
//! same way; changing a code changes the segment's layout version.

/// Defines [`Call`], its codes in order from 1 ([`ALL`]) and its names, from one list:
/// a call added at the end gets the next code and cannot be left out of either.
macro_rules! calls {
    ($first:ident => $first_name:literal, $($call:ident => $name:literal,)*) => {
        /// An operation, named as the user called it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub(crate) enum Call {
            $first = 1,
            $($call,)*
        }

        /// Every call, in code order (`ALL[i]` has code `i + 1`).
        const ALL: &[Call] = &[Call::$first, $(Call::$call,)*];

        impl Call {
            /// The call's name as the user wrote it (`recv_into`, `Message::recv`).
            pub(crate) fn name(self) -> &'static str {
                match self {
                    Call::$first => $first_name,
                    $(Call::$call => $name,)*
                }
            }
        }
    };
}

// Codes are published in shared memory: new calls go at the end.
calls! {
    Barrier => "barrier",
    Bcast => "bcast_into",
    Scatter => "scatter_into",
    Gather => "gather_into",
    Allgather => "allgather_into",
    Alltoall => "alltoall_into",
    Reduce => "reduce_into",
    Allreduce => "allreduce_into",
    Scan => "scan_into",
    Exscan => "exscan_into",
    ReduceScatterBlock => "reduce_scatter_block_into",
    Gatherv => "gatherv_into",
    Scatterv => "scatterv_into",
    Allgatherv => "allgatherv_into",
    BcastObj => "bcast",
    ScatterObj => "scatter",
    GatherObj => "gather",
    AllgatherObj => "allgather",
    AlltoallObj => "alltoall",
    ReduceObj => "reduce",
    AllreduceObj => "allreduce",
    ScanObj => "scan",
    ExscanObj => "exscan",
    Dup => "dup",
    Split => "split",
    Alltoallv => "alltoallv_into",
    Recv => "recv",
    RecvInto => "recv_into",
    RecvVec => "recv_vec",
    Send => "send",
    SendSlice => "send_slice",
    Probe => "probe",
    Wait => "wait",
    WaitAny => "wait_any",
    Isend => "isend",
    IsendVec => "isend_vec",
    IsendSlice => "isend_slice",
    Irecv => "irecv",
    IrecvInto => "irecv_into",
    Finalize => "finalize",
    SendrecvSlice => "sendrecv_slice",
    Ssend => "ssend",
    SsendSlice => "ssend_slice",
    Issend => "issend",
    IssendVec => "issend_vec",
    IssendSlice => "issend_slice",
    Mprobe => "mprobe",
    Mrecv => "Message::recv",
    SendrecvReplace => "sendrecv_replace",
    WinFence => "Window::fence",
    WinFree => "Window::free",
    CartCreate => "cart_create",
    CartSub => "CartComm::sub",
    CommCreate => "create",
    LoanSlice => "loan_slice",
    SendInit => "send_init",
    RecvInit => "recv_init",
    LoanObject => "loan_object",
}

impl Call {
    /// The call with published code `code`; `None` for 0 (no call) or an unknown code.
    pub(crate) fn from_code(code: u32) -> Option<Call> {
        let i = (code as usize).checked_sub(1)?;
        ALL.get(i).copied()
    }

    /// The code published in shared memory.
    pub(crate) fn code(self) -> u32 {
        self as u32
    }

    /// Whether the call has a root rank (compared across ranks by the signature check).
    pub(crate) fn rooted(self) -> bool {
        use Call::*;
        matches!(
            self,
            Bcast
                | Scatter
                | Gather
                | Reduce
                | Gatherv
                | Scatterv
                | BcastObj
                | ScatterObj
                | GatherObj
                | ReduceObj
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_names_its_call_and_no_other() {
        for (i, &c) in ALL.iter().enumerate() {
            assert_eq!(c.code() as usize, i + 1, "{c:?}");
            assert_eq!(Call::from_code(c.code()), Some(c));
        }
        assert_eq!(Call::from_code(0), None);
        assert_eq!(Call::from_code(ALL.len() as u32 + 1), None);
        let mut names: Vec<_> = ALL.iter().map(|c| c.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "names are distinct");
    }
}
