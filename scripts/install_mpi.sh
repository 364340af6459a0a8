#!/usr/bin/env bash
# Installs what the MPI backend (cargo feature `mpi`) needs to build and be tested, from
# Debian's packages: Open MPI and MPICH (libraries, compiler wrappers, launchers),
# libclang for rsmpi's bindings, and, for the two-node test, sshd and iproute2.
# Runs as root (CI) or through sudo; does nothing for packages already installed.
set -euo pipefail
pkgs=(openmpi-bin libopenmpi-dev mpich libmpich-dev libclang-dev clang openssh-server
      openssh-client iproute2 pkg-config)
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install_mpi.sh: everything is installed"
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -o DPkg::Lock::Timeout=600
$sudo apt-get install -y -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
