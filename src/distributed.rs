//! Several processes, on one machine or many, through MPI (`mpirun -n N latentlab …
//! --distributed mpi`, or Slurm's `srun`): the engine clusters already run, bound by the `mpi`
//! crate (rsmpi) behind the cargo feature `mpi`. The default build has no MPI; the flag is then
//! refused in one line.
//!
//! Everything the ranks share goes through one operation, an all-reduce that sums a vector of
//! `f64` in place: PCA's statistics once, a training step's gradients once per step.

use crate::error::{Error, Result};

/// `--distributed`: how many processes share the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DistributedChoice {
    /// This process alone.
    #[default]
    None,
    /// The ranks `mpirun`/`srun` started.
    Mpi,
}

/// The processes a command runs on: this one alone, or the MPI world.
pub struct World {
    rank: usize,
    size: usize,
    #[cfg(feature = "mpi")]
    mpi: Option<mpi::environment::Universe>,
}

impl World {
    /// This process alone.
    pub fn single() -> Self {
        Self {
            rank: 0,
            size: 1,
            #[cfg(feature = "mpi")]
            mpi: None,
        }
    }

    /// The world `choice` names; MPI is initialized once per process.
    pub fn join(choice: DistributedChoice) -> Result<Self> {
        match choice {
            DistributedChoice::None => Ok(Self::single()),
            #[cfg(feature = "mpi")]
            DistributedChoice::Mpi => {
                use mpi::traits::Communicator;
                let universe = mpi::initialize().ok_or_else(|| {
                    Error::Internal("MPI was initialized twice in one process".into())
                })?;
                let world = universe.world();
                Ok(Self {
                    rank: world.rank() as usize,
                    size: world.size() as usize,
                    mpi: Some(universe),
                })
            }
            #[cfg(not(feature = "mpi"))]
            DistributedChoice::Mpi => Err(Error::bad_input(
                "--distributed mpi: this binary was built without the 'mpi' feature; rebuild with \
                 `cargo build --release --features mpi` (Debian: libopenmpi-dev, openmpi-bin, \
                 libclang-dev) and start it with mpirun",
            )),
        }
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this process writes results (rank 0).
    pub fn writes(&self) -> bool {
        self.rank == 0
    }

    /// Sums `values` over all ranks, in place, the same result on every rank.
    pub fn all_reduce_sum(&self, values: &mut [f64]) {
        #[cfg(feature = "mpi")]
        if let Some(universe) = &self.mpi {
            use mpi::collective::{CommunicatorCollectives, SystemOperation};
            let mine = values.to_vec();
            universe
                .world()
                .all_reduce_into(&mine[..], values, SystemOperation::sum());
        }
        #[cfg(not(feature = "mpi"))]
        let _ = values;
    }
}
