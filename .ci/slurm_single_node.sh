#!/bin/bash
# Single-node SLURM 22.05 (Debian 12) on localhost for the SLURM tests (tests/test_slurm.py starts it through
# tests/slurm_cluster.py; .ci/run installs the packages). Run as root; no systemd needed. Adapted from the
# project's shared set-up script; `PIDDIR` holds the daemons' pids, the tests stop them by pid.
# ACCOUNTING=1 (default): slurmdbd + MariaDB, so `sacct` works (submitit polls job state with sacct).
# ACCOUNTING=0: no sacct; submitit then cannot see a job that died without writing its result.
# PIDs of the daemons go to $PIDDIR/*.pid (stop them with: kill $(cat $PIDDIR/*.pid)).
set -euo pipefail
ACCOUNTING=${ACCOUNTING:-1}
PIDDIR=${PIDDIR:-/tmp/slurm-ci}
mkdir -p "$PIDDIR"
H=$(hostname)
export DEBIAN_FRONTEND=noninteractive
PKGS="slurm-wlm munge"; [ "$ACCOUNTING" = 1 ] && PKGS="$PKGS slurmdbd mariadb-server"
if ! dpkg -s $PKGS >/dev/null 2>&1; then apt-get update -q && apt-get install -y -q $PKGS; fi

# munge: the package's postinst creates /etc/munge/munge.key
[ -f /etc/munge/munge.key ] || { /usr/sbin/mungekey --create 2>/dev/null || create-munge-key; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
runuser -u munge -- /usr/sbin/munged          # daemonizes; pid in /run/munge/munged.pid
cp /run/munge/munged.pid "$PIDDIR/munged.pid"
munge -n | unmunge >/dev/null

mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
chown slurm:slurm /var/spool/slurmctld /var/log/slurm

if [ "$ACCOUNTING" = 1 ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux"
else
  ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi
# 16 CPUs declared on a 2-core VM (config_overrides makes slurmd accept it): the tests run 3 one-CPU jobs and 3
# 2-task DDP jobs at once (they mostly wait). RealMemory must be <= the machine's free memory.
cat > /etc/slurm/slurm.conf <<EOF
ClusterName=ci
SlurmctldHost=$H
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
$ACCT
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=30
SlurmdParameters=config_overrides
NodeName=$H CPUs=16 Sockets=1 CoresPerSocket=16 ThreadsPerCore=1 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF

if [ "$ACCOUNTING" = 1 ]; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  nohup /usr/sbin/mariadbd --user=mysql --socket=/run/mysqld/mysqld.sock --bind-address=127.0.0.1 \
    > /var/log/slurm/mariadb.out 2>&1 &
  echo $! > "$PIDDIR/mariadbd.pid"
  for i in $(seq 1 60); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
              CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=/run/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
EOF
  chown slurm:slurm /etc/slurm/slurmdbd.conf && chmod 600 /etc/slurm/slurmdbd.conf
  nohup /usr/sbin/slurmdbd -D > /var/log/slurm/slurmdbd.out 2>&1 &
  echo $! > "$PIDDIR/slurmdbd.pid"
  for i in $(seq 1 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.5; done  # dbd answers
  sacctmgr -i add cluster ci >/dev/null 2>&1 || true          # "Nothing new added" on a re-run
fi

nohup /usr/sbin/slurmctld -D -i > /var/log/slurm/slurmctld.out 2>&1 &
echo $! > "$PIDDIR/slurmctld.pid"
nohup /usr/sbin/slurmd -D > /var/log/slurm/slurmd.out 2>&1 &
echo $! > "$PIDDIR/slurmd.pid"
for i in $(seq 1 60); do [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break; sleep 0.5; done
sinfo
srun -n1 hostname
srun -n2 -c1 hostname
[ "$ACCOUNTING" = 1 ] && { sleep 1; sacct -X -n -o JobID,State | tail -2; }
echo "SLURM up"
