#!/usr/bin/env python3
"""iotop_ext - per-thread Linux I/O monitor with the counters iotop never showed.

Shows, per thread (or per process with -P), the disk bytes iotop shows and
also the VFS-level bytes (read_char/write_char), read/write syscall counts and
block-I/O wait counts. Data comes from the kernel's taskstats generic-netlink
interface and from /proc/PID/task/TID/io (exact, unmasked counters).

USAGE: sudo python3 iotop_ext.py [-h] [-v] [-o | --only LEVEL] [-b] [-n NUM]
                                 [-d SEC] [-p PID] [-u USER] [-P] [-a] [-k]
                                 [-G] [--cgroup-depth N]
                                 [-t] [-q] [-c | --no-fullcmdline]
                                 [--json | --csv] [--summary] [--columns LIST]
                                 [--sort COLUMN] [--reverse] [--delayacct]
                                 [--netlink-only] [--prometheus FILE]
                                 [--prometheus-by LABELS] [--prometheus-top N]
                                 [--filter REGEX] [--man] [-1 ... -9] [-e]
       python3 iotop_ext.py --replay FILE [--begin TIME] [--end TIME]
                                 [--host NAME] [the view options above]

Pure standard library, CPython 3.6+, Linux only. Needs root or CAP_NET_ADMIN.
"""

import sys

# Older Pythons get one line, not a traceback: this file stays parseable by
# Python 2.7 (no f-strings, annotations or keyword-only arguments) so that
# this check runs before anything newer is needed.
if sys.version_info < (3, 6):
    sys.stderr.write("iotop_ext: needs Python 3.6 or later (this is %d.%d)\n" % tuple(sys.version_info[:2]))
    sys.exit(2)

import argparse
import errno
import itertools
import json
import operator
import os
import signal
import socket
import stat
import struct
import time
import unicodedata

__version__ = "1.0.0"
PROG = "iotop_ext"


class IotopError(Exception):
    """The one error type the tool raises on its own: a one-line message."""


# ===========================================================================
# Netlink transport: framing, family lookup, request/reply, errors
# ===========================================================================

NETLINK_GENERIC = 16
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
NLA_TYPE_MASK = 0x3FFF      # strips NLA_F_NESTED and NLA_F_NET_BYTEORDER

NLMSGHDR = struct.Struct("=IHHII")    # len, type, flags, seq, portid
GENLMSGHDR = struct.Struct("=BBH")    # cmd, version, reserved
NLATTR = struct.Struct("=HH")         # len, type
U32 = struct.Struct("=I")
I32 = struct.Struct("=i")
U16 = struct.Struct("=H")

# The kernel runs every message of one datagram inside send(); 128 replies
# fit the default receive buffer, 192 and more overrun it (ENOBUFS).
BATCH = 128
RECV_BUFFER = 1 << 16


class NetlinkError(IotopError):
    """The kernel answered a request with an error number."""

    def __init__(self, err, what):
        IotopError.__init__(self, "%s: %s" % (what, os.strerror(err)))
        self.errno = err


class MalformedReply(IotopError):
    """A reply whose framing does not hold together."""


def align4(n):
    return (n + 3) & ~3


def pack_attr(attr_type, data):
    """One netlink attribute, padded to 4 bytes."""
    length = NLATTR.size + len(data)
    return NLATTR.pack(length, attr_type) + data + b"\0" * (align4(length) - length)


def pack_genl_request(family, seq, cmd, attrs, flags=NLM_F_REQUEST):
    body = GENLMSGHDR.pack(cmd, 1, 0) + attrs
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), family, flags, seq, 0) + body


def parse_messages(data):
    """Split one datagram into (type, flags, seq, payload) tuples.

    Raises MalformedReply on any length that does not fit the datagram.
    """
    messages = []
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < NLMSGHDR.size:
            raise MalformedReply("netlink message header truncated")
        length, msg_type, flags, seq, _ = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size or offset + length > end:
            raise MalformedReply("netlink message length %d out of bounds" % length)
        messages.append((msg_type, flags, seq, data[offset + NLMSGHDR.size:offset + length]))
        offset += align4(length)
    return messages


def parse_attrs(data):
    """Map attribute type -> payload for one level of netlink attributes."""
    attrs = {}
    offset, end = 0, len(data)
    while end - offset >= NLATTR.size:
        length, attr_type = NLATTR.unpack_from(data, offset)
        if length < NLATTR.size or offset + length > end:
            raise MalformedReply("netlink attribute length %d out of bounds" % length)
        attrs[attr_type & NLA_TYPE_MASK] = data[offset + NLATTR.size:offset + length]
        offset += align4(length)
    if offset < end:
        raise MalformedReply("netlink attribute header truncated")
    return attrs


def parse_error(payload):
    """errno carried by an NLMSG_ERROR payload (0 is an acknowledgement)."""
    if len(payload) < I32.size:
        raise MalformedReply("netlink error message truncated")
    return -I32.unpack_from(payload, 0)[0]


def genl_attrs(payload):
    if len(payload) < GENLMSGHDR.size:
        raise MalformedReply("generic netlink header truncated")
    return parse_attrs(payload[GENLMSGHDR.size:])


class NetlinkSocket(object):
    """A NETLINK_GENERIC socket that believes only the kernel.

    Every request has its own sequence number; a datagram counts only if it
    comes from port 0 (the kernel) and carries a sequence number we are
    waiting for. Anything else (another process writing to our port, stale
    replies) is dropped.
    """

    def __init__(self):
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
            self.sock.bind((0, 0))
            # connected to the kernel, the socket is refused to other senders
            # by the kernel itself; receive_into checks the sender again
            self.sock.connect((0, 0))
        except OSError as err:
            raise NetlinkError(err.errno or errno.EPROTONOSUPPORT, "netlink socket")
        self.seq = int(time.time()) & 0x7FFFFFFF
        self.buffer = bytearray(RECV_BUFFER)
        self.view = memoryview(self.buffer)

    def close(self):
        self.sock.close()

    def next_seq(self):
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        return self.seq

    def send(self, data):
        try:
            self.sock.send(data)
        except OSError as err:
            raise NetlinkError(err.errno, "netlink send")

    def receive_into(self, wait):
        """Length of the next datagram from the kernel, now in self.buffer;
        None when nothing is queued (and wait is false)."""
        while True:
            try:
                n, address = self.sock.recvfrom_into(self.buffer, 0, 0 if wait else socket.MSG_DONTWAIT)
            except BlockingIOError:
                return None
            except InterruptedError:
                continue
            except OSError as err:
                raise NetlinkError(err.errno, "netlink receive")
            if address[0] == 0:
                return n
            # not the kernel: forged or stray, dropped

    def receive(self, wait):
        """Messages of one datagram from the kernel, or None when none is queued."""
        n = self.receive_into(wait)
        return None if n is None else parse_messages(bytes(self.view[:n]))

    def transact(self, family, cmd, attrs, what, ack=False):
        """Send one request; return the generic-netlink payload of its reply,
        or None for a bare acknowledgement (asked for with ack)."""
        seq = self.next_seq()
        self.send(pack_genl_request(family, seq, cmd, attrs, NLM_F_REQUEST | (NLM_F_ACK if ack else 0)))
        while True:
            for msg_type, _, msg_seq, payload in self.receive(wait=True):
                if msg_seq != seq:
                    continue
                if msg_type != NLMSG_ERROR:
                    return payload
                err = parse_error(payload)
                if err:
                    raise NetlinkError(err, what)
                return None

    def resolve_family(self, name):
        payload = self.transact(GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                                pack_attr(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0"),
                                "generic netlink family %s" % name)
        family = genl_attrs(payload).get(CTRL_ATTR_FAMILY_ID)
        if family is None or len(family) < U16.size:
            raise MalformedReply("family reply without an id")
        return U16.unpack_from(family, 0)[0]


TASKSTATS_CMD_GET = 1
TASKSTATS_CMD_ATTR_PID = 1
TASKSTATS_CMD_ATTR_TGID = 2
TASKSTATS_CMD_ATTR_REGISTER_CPUMASK = 3
TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK = 4
TASKSTATS_TYPE_PID = 1
TASKSTATS_TYPE_STATS = 3
TASKSTATS_TYPE_AGGR_PID = 4
TASKSTATS_TYPE_TGID = 2
TASKSTATS_TYPE_AGGR_TGID = 5
# A GET by thread or by thread group is answered with (aggregate attribute, id attribute).
REPLY_TYPES = {TASKSTATS_CMD_ATTR_PID: (TASKSTATS_TYPE_AGGR_PID, TASKSTATS_TYPE_PID),
               TASKSTATS_CMD_ATTR_TGID: (TASKSTATS_TYPE_AGGR_TGID, TASKSTATS_TYPE_TGID)}
# A GET request: nlmsghdr, genlmsghdr, one u32 PID attribute (28 bytes).
GET_REQUEST = struct.Struct("=IHHIIBBHHHI")
# How the kernel lays out a reply: nlmsghdr, genlmsghdr, then
# AGGR_PID { PID (u32), STATS }: the attribute headers and the pid from offset 20.
KERNEL_REPLY = struct.Struct("=HHHHIHH")
STATS_OFFSET = NLMSGHDR.size + GENLMSGHDR.size + KERNEL_REPLY.size


def parse_taskstats_reply(payload, by=TASKSTATS_CMD_ATTR_PID):
    """(tid, struct taskstats bytes) from a TASKSTATS_CMD_NEW payload;
    by TASKSTATS_CMD_ATTR_TGID: (tgid, the thread group's sums)."""
    aggregate_type, id_type = REPLY_TYPES[by]
    aggregate = genl_attrs(payload).get(aggregate_type)
    if aggregate is None:
        raise MalformedReply("taskstats reply without a per-task aggregate")
    inner = parse_attrs(aggregate)
    pid, stats = inner.get(id_type), inner.get(TASKSTATS_TYPE_STATS)
    if pid is None or stats is None or len(pid) < U32.size:
        raise MalformedReply("taskstats reply without pid or stats")
    return U32.unpack_from(pid, 0)[0], stats


class TaskstatsClient(object):
    """TASKSTATS_CMD_GET for many threads, batched into few send() calls."""

    def __init__(self, netlink=None):
        self.netlink = netlink or NetlinkSocket()
        try:
            self.family = self.netlink.resolve_family("TASKSTATS")
        except NetlinkError as err:
            self.netlink.close()
            if err.errno == errno.ENOENT:
                raise NetlinkError(err.errno, "taskstats is unavailable (not the host network "
                                   "namespace, or a kernel without CONFIG_TASKSTATS)")
            raise

    def close(self):
        self.netlink.close()

    def get_stats(self, tids, by=TASKSTATS_CMD_ATTR_PID):
        """Yield (tid, taskstats bytes) per thread; vanished threads are skipped.
        by TASKSTATS_CMD_ATTR_TGID: (tgid, sums over the group's threads)."""
        tids = list(tids)
        for start in range(0, len(tids), BATCH):
            for item in self._get_batch(tids[start:start + BATCH], by):
                yield item

    def _get_batch(self, tids, by):
        pending = {}
        chunks = []
        pack = GET_REQUEST.pack
        for tid in tids:
            seq = self.netlink.next_seq()
            pending[seq] = tid
            chunks.append(pack(GET_REQUEST.size, self.family, NLM_F_REQUEST, seq, 0,
                               TASKSTATS_CMD_GET, 1, 0, 8, by, tid))
        self.netlink.send(b"".join(chunks))
        results = []
        netlink, family = self.netlink, self.family
        # The kernel answered every request before send() returned: drain
        # what is queued, never wait for a reply that was dropped.
        while pending:
            n = netlink.receive_into(wait=False)
            if n is None:
                break
            stats = self._kernel_shaped(n, by)
            if stats is not None:
                seq, reply_tid, stats = stats
                tid = pending.pop(seq, None)
                if tid is not None and tid == reply_tid:
                    results.append((tid, stats))
                continue
            for msg_type, _, seq, payload in parse_messages(bytes(netlink.view[:n])):
                tid = pending.pop(seq, None)
                if tid is None:
                    continue
                if msg_type == NLMSG_ERROR:
                    err = parse_error(payload)
                    if err == errno.ESRCH:
                        continue
                    raise NetlinkError(err, "taskstats for thread %d" % tid)
                if msg_type != family:
                    continue
                reply_tid, stats = parse_taskstats_reply(payload, by)
                if reply_tid == tid:
                    results.append((tid, bytes(stats)))
        return results

    def _kernel_shaped(self, n, by):
        """(seq, tid, stats) when the datagram in the buffer is exactly one
        reply in the kernel's usual layout, every length checked; None
        sends it through the general parser."""
        buf = self.netlink.buffer
        if n < STATS_OFFSET:
            return None
        length, msg_type, _, seq, _ = NLMSGHDR.unpack_from(buf, 0)
        if length != n or msg_type != self.family:
            return None
        agg_len, agg_type, pid_len, pid_type, tid, stats_len, stats_type = KERNEL_REPLY.unpack_from(buf, 20)
        aggregate_type, id_type = REPLY_TYPES[by]
        if ((agg_type & NLA_TYPE_MASK) != aggregate_type or agg_len != n - 20
                or pid_len != 8 or pid_type != id_type
                or stats_type != TASKSTATS_TYPE_STATS or stats_len != agg_len - 12):
            return None
        return seq, tid, bytes(buf[STATS_OFFSET:n])


def online_cpus(path="/sys/devices/system/cpu/online"):
    """The kernel's cpulist of online CPUs, e.g. '0-3'."""
    try:
        with open(path) as handle:
            return handle.read().strip() or "0"
    except OSError:
        return "0-%d" % max(0, (os.cpu_count() or 1) - 1)


class ExitListener(object):
    """Receives the kernel's final struct taskstats of every task that exits
    (TASKSTATS_CMD_ATTR_REGISTER_CPUMASK), so threads that start and end
    between two samples are not lost. Records carry the kernel's I/O
    counters, masked to 1024 steps."""

    RECEIVE_BUFFER = 8 << 20

    def __init__(self, family):
        self.netlink = NetlinkSocket()
        self.family, self.mask = family, online_cpus().encode() + b"\0"
        self.overrun = False
        sock = self.netlink.sock
        for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            try:
                if option is not None:
                    sock.setsockopt(socket.SOL_SOCKET, option, self.RECEIVE_BUFFER)
                    break
            except OSError:
                continue
        try:
            self.netlink.transact(family, TASKSTATS_CMD_GET,
                                  pack_attr(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, self.mask),
                                  "taskstats exit listener", ack=True)
        except IotopError:
            self.netlink.close()
            raise

    def close(self):
        # No waiting for the acknowledgement: on a busy host it can be lost in
        # a full receive queue behind endless exit records, and the run would
        # never end. Closing the socket unregisters it too (the kernel drops a
        # listener whose port is gone); the request only makes that immediate.
        try:
            self.netlink.send(pack_genl_request(self.family, self.netlink.next_seq(), TASKSTATS_CMD_GET,
                                                pack_attr(TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, self.mask)))
        except IotopError:
            pass
        self.netlink.close()

    def drain(self):
        """[(tid, struct taskstats bytes)] of the tasks that exited since the
        last call. self.overrun tells whether the kernel dropped some."""
        records = []
        self.overrun = False
        while True:
            try:
                messages = self.netlink.receive(wait=False)
            except NetlinkError as err:
                if err.errno != errno.ENOBUFS:
                    raise
                self.overrun = True
                continue
            if messages is None:
                return records
            records.extend(parse_taskstats_reply(payload)
                           for msg_type, _, _, payload in messages if msg_type == self.family)


# ===========================================================================
# Taskstats decoding: one table, the version each field appeared in
# ===========================================================================

# (name, struct code, version it appeared in). Order is the v16+ layout
# of struct taskstats in include/uapi/linux/taskstats.h. Versions before 4
# are refused, so fields older than that are marked 4. None names padding.
TASKSTATS_FIELDS = (
    ("version", "H", 4), ("ac_exitcode", "I", 4), ("ac_flag", "B", 4), ("ac_nice", "B", 4),
    ("cpu_count", "Q", 4), ("cpu_delay_total", "Q", 4),
    ("blkio_count", "Q", 4), ("blkio_delay_total", "Q", 4),
    ("swapin_count", "Q", 4), ("swapin_delay_total", "Q", 4),
    ("cpu_run_real_total", "Q", 4), ("cpu_run_virtual_total", "Q", 4),
    ("ac_comm", "32s", 4), ("ac_sched", "B", 4), (None, "3s", 4),
    ("ac_uid", "I", 4), ("ac_gid", "I", 4), ("ac_pid", "I", 4), ("ac_ppid", "I", 4),
    ("ac_btime", "I", 4), ("ac_etime", "Q", 4), ("ac_utime", "Q", 4), ("ac_stime", "Q", 4),
    ("ac_minflt", "Q", 4), ("ac_majflt", "Q", 4),
    ("coremem", "Q", 4), ("virtmem", "Q", 4), ("hiwater_rss", "Q", 4), ("hiwater_vm", "Q", 4),
    ("read_char", "Q", 4), ("write_char", "Q", 4),
    ("read_syscalls", "Q", 4), ("write_syscalls", "Q", 4),
    ("read_bytes", "Q", 4), ("write_bytes", "Q", 4), ("cancelled_write_bytes", "Q", 4),
    ("nvcsw", "Q", 4), ("nivcsw", "Q", 4),
    ("ac_utimescaled", "Q", 5), ("ac_stimescaled", "Q", 5), ("cpu_scaled_run_real_total", "Q", 5),
    ("freepages_count", "Q", 7), ("freepages_delay_total", "Q", 7),
    ("thrashing_count", "Q", 9), ("thrashing_delay_total", "Q", 9),
    ("ac_btime64", "Q", 10),
    ("compact_count", "Q", 11), ("compact_delay_total", "Q", 11),
    ("ac_tgid", "I", 12), ("ac_tgetime", "Q", 12), ("ac_exe_dev", "Q", 12), ("ac_exe_inode", "Q", 12),
    ("wpcopy_count", "Q", 13), ("wpcopy_delay_total", "Q", 13),
    ("irq_count", "Q", 14), ("irq_delay_total", "Q", 14),
    ("cpu_delay_max", "Q", 15), ("cpu_delay_min", "Q", 15),
    ("blkio_delay_max", "Q", 15), ("blkio_delay_min", "Q", 15),
    ("swapin_delay_max", "Q", 15), ("swapin_delay_min", "Q", 15),
    ("freepages_delay_max", "Q", 15), ("freepages_delay_min", "Q", 15),
    ("thrashing_delay_max", "Q", 15), ("thrashing_delay_min", "Q", 15),
    ("compact_delay_max", "Q", 15), ("compact_delay_min", "Q", 15),
    ("wpcopy_delay_max", "Q", 15), ("wpcopy_delay_min", "Q", 15),
    ("irq_delay_max", "Q", 15), ("irq_delay_min", "Q", 15),
)
# Members the header declares __attribute__((aligned(8))).
ALIGNED_8 = frozenset(("cpu_count", "ac_sched", "ac_uid", "ac_etime", "ac_tgetime"))
MIN_TASKSTATS_VERSION = 4
# v15 (Linux 6.14) put each X_delay_max/min right after X_delay_total;
# v16 moved them to the end, where the table has them.
MIDDLE_LAYOUT_VERSION = 15


class UnsupportedVersion(IotopError):
    pass


def field_order(version):
    """Fields present in a struct of this version, in memory order."""
    fields = [f for f in TASKSTATS_FIELDS if f[2] <= version]
    if version != MIDDLE_LAYOUT_VERSION:
        return fields
    extremes = {f[0]: f for f in fields if f[0] and f[0].endswith(("_delay_max", "_delay_min"))}
    ordered = []
    for field in fields:
        if field[0] in extremes:
            continue
        ordered.append(field)
        if field[0] and field[0].endswith("_delay_total"):
            prefix = field[0][:-len("total")]
            ordered.extend(extremes[prefix + s] for s in ("max", "min") if prefix + s in extremes)
    return ordered


def layout(version):
    """[(name, code, offset)] for a struct taskstats of this version."""
    offset = 0
    fields = []
    for name, code, _ in field_order(version):
        size = struct.calcsize("=" + code)
        align = 8 if name in ALIGNED_8 else (size if code in "BHIQ" else 1)
        offset = (offset + align - 1) // align * align
        fields.append((name, code, offset))
        offset += size
    return fields


_decoders = {}


def taskstats_decoder(version, length, names=None):
    """(struct.Struct, field names) reading the named fields that fit in length.

    Cached per (version, length, names): one unpack_from per reply.
    """
    key = (version, length, names)
    decoder = _decoders.get(key)
    if decoder is None:
        fmt, present, position = ["="], [], 0
        for name, code, offset in layout(version):
            size = struct.calcsize("=" + code)
            if name is None or offset + size > length or (names is not None and name not in names):
                continue
            fmt.append("%dx%s" % (offset - position, code))
            present.append(name)
            position = offset + size
        decoder = _decoders[key] = (struct.Struct("".join(fmt)), tuple(present))
    return decoder


def taskstats_version(payload):
    if len(payload) < 2:
        raise MalformedReply("taskstats payload shorter than its version field")
    version = U16.unpack_from(payload, 0)[0]
    if version < MIN_TASKSTATS_VERSION:
        raise UnsupportedVersion("taskstats version %d is too old (need %d or later)"
                                 % (version, MIN_TASKSTATS_VERSION))
    return version


def decode_comm(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def decode_taskstats(payload, names=None):
    """Decode a struct taskstats into {kernel field name: int} (ac_comm: str).

    The layout is chosen by the version field; fields past the end of the
    payload are absent, fields of versions newer than this table are ignored.
    names, a frozenset, restricts decoding to those fields.
    """
    version = taskstats_version(payload)
    decoder, present = taskstats_decoder(version, len(payload), names)
    record = dict(zip(present, decoder.unpack_from(payload, 0)))
    if "ac_comm" in record:
        record["ac_comm"] = decode_comm(record["ac_comm"])
    return record


def taskstats_reader(names):
    """A function: struct taskstats bytes -> tuple of the named fields, in
    the order given, 0 for a field the payload's version or length lacks.
    For the sampler's hot path: no dict per reply."""
    wanted = frozenset(names)
    readers = {}

    def read(payload):
        key = (taskstats_version(payload), len(payload))
        reader = readers.get(key)
        if reader is None:
            decoder, present = taskstats_decoder(key[0], key[1], wanted)
            absent = len(present)           # index of the 0 appended below
            pick = operator.itemgetter(*[present.index(n) if n in present else absent for n in names])
            reader = readers[key] = (decoder.unpack_from, pick)
        unpack, pick = reader
        return pick(unpack(payload) + (0,))
    return read


# ===========================================================================
# Sources: /proc tasks and io, vmstat, delay accounting, users, io priority
# ===========================================================================

# Counters in /proc/PID/task/TID/io order, then the taskstats delay counters.
IO_COUNTERS = ("read_char", "write_char", "read_syscalls", "write_syscalls",
               "read_bytes", "write_bytes", "cancelled_write_bytes")
DELAY_COUNTERS = ("blkio_count", "blkio_delay_total", "swapin_delay_total")
# Further taskstats fields, for --columns; then gauges (a high-water mark,
# the largest single delays): shown as they are, not as deltas.
GAUGE_COUNTERS = ("hiwater_rss", "cpu_delay_max", "blkio_delay_max", "swapin_delay_max", "freepages_delay_max",
                  "thrashing_delay_max", "compact_delay_max", "wpcopy_delay_max", "irq_delay_max")
EXTRA_COUNTERS = ("cpu_delay_total", "nvcsw", "nivcsw", "ac_utime", "ac_stime", "ac_minflt", "ac_majflt",
                  "freepages_delay_total", "thrashing_delay_total", "compact_delay_total",
                  "wpcopy_delay_total", "irq_delay_total") + GAUGE_COUNTERS
GAUGES = frozenset(GAUGE_COUNTERS)
COUNTERS = IO_COUNTERS + DELAY_COUNTERS + EXTRA_COUNTERS
RECORD_COUNTERS = IO_COUNTERS + DELAY_COUNTERS            # always in JSON and CSV records
NO_DELAYS = (0,) * (len(COUNTERS) - len(IO_COUNTERS))
# Where the counters of time spent waiting (ns) stand: a thread waits one wait at a time.
WAIT_TOTALS = tuple(i for i, name in enumerate(COUNTERS) if name.endswith("_delay_total"))
ZERO = (0,) * len(COUNTERS)
# What the sampler takes from each taskstats reply, in this order.
TASK_FIELDS = ("ac_comm", "ac_uid", "ac_nice", "ac_sched", "ac_tgid") + COUNTERS
TASK_HEAD = len(TASK_FIELDS) - len(COUNTERS)            # fields before the counters
TASK_TGID = TASK_FIELDS.index("ac_tgid")
TASK_NAMING = operator.itemgetter(*map(TASK_FIELDS.index, ("ac_comm", "ac_uid", "ac_nice", "ac_sched")))
# Where the counters that rank rows stand in a row's values.
READ_CHAR, WRITE_CHAR, READ_BYTES, WRITE_BYTES, CANCELLED_WRITE_BYTES = map(COUNTERS.index, (
    "read_char", "write_char", "read_bytes", "write_bytes", "cancelled_write_bytes"))


def read_file(path, size=65536):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def list_pids(proc="/proc"):
    try:
        names = os.listdir(proc)
    except OSError as err:
        raise IotopError("cannot list %s: %s (is procfs mounted?)" % (proc, err.strerror))
    return [int(name) for name in names if name.isdigit()]


def list_threads(pid, proc="/proc"):
    try:
        return [int(name) for name in os.listdir("%s/%d/task" % (proc, pid))]
    except OSError:
        return []


# The io file's names of IO_COUNTERS, in the order the kernel prints them.
IO_FILE_NAMES = [b"rchar:", b"wchar:", b"syscr:", b"syscw:", b"read_bytes:", b"write_bytes:",
                 b"cancelled_write_bytes:"]


def parse_io(data):
    """Counters of a /proc/.../io file as a tuple in IO_COUNTERS order, by
    name; the names are checked in one comparison, and looked up one by one
    only where a kernel prints them otherwise."""
    fields = data.split()
    values = fields[1::2]
    if fields[0::2] != IO_FILE_NAMES:
        named = dict(zip(fields[0::2], values))
        try:
            values = [named[name] for name in IO_FILE_NAMES]
        except KeyError:
            raise ValueError("unexpected io file")
    return tuple(map(int, values))


def read_vmstat(path="/proc/vmstat"):
    """(pgpgin, pgpgout) in bytes: what the block layer really moved."""
    values = {}
    for line in read_file(path, 1 << 20).splitlines():
        key, _, value = line.partition(b" ")
        if key in (b"pgpgin", b"pgpgout"):
            values[key] = int(value) * 1024
    return values.get(b"pgpgin", 0), values.get(b"pgpgout", 0)


DELAYACCT_SYSCTL = "/proc/sys/kernel/task_delayacct"


def write_delayacct(on, path=DELAYACCT_SYSCTL):
    """Switch delay accounting (root only); IotopError when refused."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"1\n" if on else b"0\n")
        finally:
            os.close(fd)
    except OSError as err:
        raise IotopError("cannot switch delay accounting (%s): %s" % (path, err.strerror))


def read_delayacct(path=DELAYACCT_SYSCTL):
    """True/False from the sysctl; None where it does not exist (kernels
    before 5.14 account delays unless booted with nodelayacct)."""
    try:
        return read_file(path).strip() != b"0"
    except OSError:
        return None


def read_argv(pid, proc="/proc"):
    """A process's arguments (its first 4 KiB), None for kernel threads and the gone."""
    try:
        raw = read_file("%s/%d/cmdline" % (proc, pid), 4096)
    except OSError:
        return None
    if not raw:
        return None
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    return raw.decode("utf-8", "surrogateescape").split("\0")


def stat_fields(data):
    """The fields of a stat file after the name: [0] is field 3 (state). The
    name may hold ')' and spaces, so it ends at the last ')'."""
    fields = data[data.rfind(b")") + 2:].split()
    if len(fields) < 39:
        raise ValueError("unexpected stat file")
    return fields


def read_task_stat(tgid, tid, proc="/proc"):
    """(name, nice, scheduling policy) of a thread from its stat file."""
    data = read_file("%s/%d/task/%d/stat" % (proc, tgid, tid))
    fields = stat_fields(data)
    start = data.find(b"(")
    if start < 0:
        raise ValueError("unexpected stat file")
    return data[start + 1:data.rfind(b")")].decode("utf-8", "surrogateescape"), int(fields[16]), int(fields[38])


def read_task_start(tgid, tid, proc="/proc"):
    """(start time, ended) of a task: field 22, in clock ticks after boot, tells
    incarnations of one TID apart; ended: a zombie or dead task (state Z, X).
    None when there is no such task."""
    try:
        fields = stat_fields(read_file("%s/%d/task/%d/stat" % (proc, tgid, tid)))
    except (OSError, ValueError):
        return None
    return int(fields[19]), fields[0] in (b"Z", b"X")


def reaped_children(data):
    """What a process's stat file says of the children it has reaped
    (minor and major faults, user and system time: fields 11, 13, 16, 17):
    it changes whenever one more child is reaped, as no child runs without
    a page fault."""
    fields = stat_fields(data)
    return fields[8], fields[10], fields[13], fields[14]


def read_tgid(tid, proc="/proc"):
    """Thread group of a thread id, None when there is no such task."""
    try:
        status = read_file("%s/%d/status" % (proc, tid))
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(b"Tgid:"):
            return int(line.split()[1])
    return None


def user_name(uid):
    """The user's name, or the number where there is none (callers cache)."""
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return str(uid)


def resolve_user(text):
    """uid for a user name or number; IotopError when unknown."""
    import pwd
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        pass
    if text.isdigit():
        return int(text)
    raise IotopError("no such user: %s" % text)


# ioprio_get/ioprio_set syscall numbers per architecture (set, get).
IOPRIO_SYSCALLS = {
    "x86_64": (251, 252), "i386": (289, 290), "i486": (289, 290), "i586": (289, 290),
    "i686": (289, 290), "aarch64": (30, 31), "arm64": (30, 31), "riscv64": (30, 31),
    "loongarch64": (30, 31), "armv6l": (314, 315), "armv7l": (314, 315), "armv8l": (314, 315),
    "ppc64le": (273, 274), "ppc64": (273, 274), "ppc": (273, 274), "s390x": (282, 283),
}
IOPRIO_CLASS_SHIFT = 13
IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASSES = ("none", "rt", "be", "idle")
SCHED_FIFO, SCHED_RR, SCHED_IDLE = 1, 2, 5


class IoPriority(object):
    """ioprio_get/ioprio_set through libc's syscall(); '?' where unknown."""

    def __init__(self):
        self.numbers = IOPRIO_SYSCALLS.get(os.uname()[4])
        self.libc = None
        if self.numbers:
            try:
                import ctypes
                self.libc = ctypes.CDLL(None, use_errno=True)
                self.get_errno = ctypes.get_errno
            except (ImportError, OSError):
                self.libc = None

    def get(self, tid):
        if self.libc is None:
            return None
        value = self.libc.syscall(self.numbers[1], IOPRIO_WHO_PROCESS, tid)
        return None if value < 0 else value

    def set(self, tid, ioclass, level):
        if self.libc is None:
            raise IotopError("ioprio_set is not known on this architecture")
        value = (IOPRIO_CLASSES.index(ioclass) << IOPRIO_CLASS_SHIFT) | level
        if self.libc.syscall(self.numbers[0], IOPRIO_WHO_PROCESS, tid, value) < 0:
            raise IotopError("ioprio_set %d: %s" % (tid, os.strerror(self.get_errno())))


def format_ioprio(value, nice, policy):
    """iotop's PRIO text: class/level; with no class set, what the
    scheduler derives from nice and policy."""
    if value is None:
        return "?"
    ioclass, level = value >> IOPRIO_CLASS_SHIFT, value & 0xFF
    if ioclass == 0:
        if policy == SCHED_IDLE:
            return "idle"
        ioclass, level = (1 if policy in (SCHED_FIFO, SCHED_RR) else 2), (nice + 20) // 5
    if ioclass == 3:
        return "idle"
    if ioclass >= len(IOPRIO_CLASSES):
        return "?"
    return "%s/%d" % (IOPRIO_CLASSES[ioclass], level)


# --- cgroups: membership, readable names, block-layer counters per group

BLOCK_COUNTERS = ("rbytes", "wbytes", "rios", "wios")     # io.stat's names
BLOCK_ZERO = (0,) * len(BLOCK_COUNTERS)
BLOCK_READ, BLOCK_WRITE = map(BLOCK_COUNTERS.index, ("rbytes", "wbytes"))
SYSTEMD_UNIT_TYPES = (".service", ".scope", ".slice", ".socket", ".mount", ".swap", ".timer", ".path")


def unescape_mount(text):
    """A mountinfo field: the kernel writes space, tab, newline and backslash as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        text = text.replace(code, chr(int(code[1:], 8)))
    return text


def find_hierarchy(mountinfo):
    """(kind, mount point, mount root) of the hierarchy tasks are grouped by,
    from /proc/self/mountinfo: 'blkio' (a v1 hierarchy with the blkio or io
    controller, which has the block counters), else 'v2' (cgroup2) when its
    io controller exists, else 'systemd' (v1 name=systemd), else plain 'v2';
    (None, None, None) without any cgroup file system."""
    found = {}
    for line in mountinfo.decode("utf-8", "surrogateescape").splitlines():
        fields, _, tail = line.partition(" - ")
        fields, tail = fields.split(), tail.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, options = tail[0], tail[2]
        place = (unescape_mount(fields[4]), unescape_mount(fields[3]))
        if fstype == "cgroup2":
            found.setdefault("v2", place)
        elif fstype == "cgroup":
            names = options.split(",")
            if "blkio" in names or "io" in names:
                found.setdefault("blkio", place)
            elif "name=systemd" in names:
                found.setdefault("systemd", place)
    io_on_v2 = False
    if "v2" in found:
        try:
            io_on_v2 = b"io" in read_file(found["v2"][0] + "/cgroup.controllers").split()
        except OSError:
            pass
    for kind, usable in (("blkio", True), ("v2", io_on_v2), ("systemd", True), ("v2", True)):
        if usable and kind in found:
            return (kind,) + found[kind]
    return None, None, None


def parse_proc_cgroup(data, kind):
    """The path of a /proc/PID/cgroup for one hierarchy kind: the '0::' line
    for v2, the line naming blkio (or io) for v1, name=systemd's for systemd."""
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        names = controllers.split(",")
        if kind == "v2" and number == "0" and not controllers:
            return path
        if kind == "blkio" and ("blkio" in names or "io" in names):
            return path
        if kind == "systemd" and "name=systemd" in names:
            return path
    return None


def whole_disk(device, sysfs="/sys/dev/block"):
    """True for a device whose block I/O is counted: a whole disk with no
    disks below it. A partition's I/O is its disk's, and device-mapper or
    md devices (they list the disks below in slaves/) pass their I/O on to
    those disks, where the same group is charged again."""
    base = "%s/%s" % (sysfs, device)
    if os.path.exists(base + "/partition"):
        return False
    try:
        return not os.listdir(base + "/slaves")
    except OSError:
        return True                   # no sysfs entry to judge by: count it


def parse_io_stat(data, counted):
    """(rbytes, wbytes, rios, wios) of a cgroup v2 io.stat, summed over the
    devices counted(b'MAJ:MIN') accepts."""
    totals = list(BLOCK_ZERO)
    for line in data.splitlines():
        fields = line.split()
        if not fields or not counted(fields[0]):
            continue
        values = dict(field.split(b"=", 1) for field in fields[1:] if b"=" in field)
        for index, name in enumerate(BLOCK_COUNTERS):
            totals[index] += int(values.get(name.encode(), 0))
    return tuple(totals)


def parse_blkio(data, counted):
    """(read, write) of a v1 blkio.throttle.io_service_bytes* or
    io_serviced* file, summed over the devices counted accepts."""
    read = write = 0
    for line in data.splitlines():
        fields = line.split()
        if len(fields) == 3 and counted(fields[0]):
            if fields[1] == b"Read":
                read += int(fields[2])
            elif fields[1] == b"Write":
                write += int(fields[2])
    return read, write


def cgroup_container(parts):
    """'runtime:short id' (or lxc/nspawn name) of the innermost container
    group in a path's components, None when there is none."""
    kubernetes = any(part.startswith("kubepods") for part in parts)
    for index in range(len(parts) - 1, -1, -1):
        part, parent = parts[index], parts[index - 1] if index else ""
        stem = part[:-len(".scope")] if part.endswith(".scope") else part
        for prefix, runtime in (("docker-", "docker"), ("libpod-conmon-", "podman-conmon"),
                                ("libpod-", "podman"), ("cri-containerd-", "containerd"),
                                ("crio-conmon-", "cri-o-conmon"), ("crio-", "cri-o")):
            if stem.startswith(prefix) and part.endswith(".scope"):
                ident = stem[len(prefix):][:12]
                return "k8s:%s" % ident if kubernetes and "conmon" not in runtime else "%s:%s" % (runtime, ident)
        if parent in ("docker", "libpod_parent") or (kubernetes and parent.startswith("pod")):
            if len(part) == 64 and all(c in "0123456789abcdef" for c in part):
                return "%s:%s" % ("k8s" if kubernetes else "docker" if parent == "docker" else "podman", part[:12])
        if parent == "lxc" or part.startswith(("lxc.payload.", "lxc.monitor.")):
            kind = "lxc-monitor" if part.startswith("lxc.monitor.") else "lxc"
            return "%s:%s" % (kind, part.split(".", 2)[-1] if part.startswith("lxc.") else part)
        if parent == "machine.slice" and stem.startswith("machine-") and part.endswith(".scope"):
            return "nspawn:%s" % stem[len("machine-"):].replace("\\x2d", "-")
        if part.startswith("systemd-nspawn@") and part.endswith(".service"):
            return "nspawn:%s" % part[len("systemd-nspawn@"):-len(".service")].replace("\\x2d", "-")
    return None


def cgroup_name(path):
    """A readable name for a cgroup path: containers by runtime and short id,
    systemd units by unit name, the rest by path; '?' when unknown."""
    if not path:
        return "?"
    parts = [part for part in path.split("/") if part]
    if not parts:
        return "/"
    container = cgroup_container(parts)
    if container:
        return container
    for part in reversed(parts):
        if part.endswith(SYSTEMD_UNIT_TYPES):
            return part
    return path


class CgroupSource(object):
    """Which cgroup a process is in, and what a group moved at the block
    layer, in the one hierarchy find_hierarchy picks."""
    baseline = None          # a group's first block reading is where its counting starts

    def __init__(self, mountinfo="/proc/self/mountinfo", proc="/proc", sysfs="/sys/dev/block"):
        try:
            data = read_file(mountinfo, 1 << 20)
        except OSError:
            data = b""
        self.kind, self.mount, self.root = find_hierarchy(data)
        self.proc, self.sysfs = proc, sysfs
        self.disks = {}

    def membership(self, pid):
        """The process's cgroup path; None when it cannot be read."""
        if self.kind is None:
            return None
        try:
            return parse_proc_cgroup(read_file("%s/%d/cgroup" % (self.proc, pid)), self.kind)
        except OSError:
            return None

    def counted(self, device):
        known = self.disks.get(device)
        if known is None:
            known = self.disks[device] = whole_disk(device.decode(), self.sysfs)
        return known

    def directory(self, path):
        """The group's directory under the mount (whose root may be a subtree)."""
        if self.root not in (None, "/") and (path + "/").startswith(self.root + "/"):
            path = path[len(self.root):]
        return self.mount + path.rstrip("/")

    def block(self, path):
        """(inode, (rbytes, wbytes, rios, wios), why not): counters summed over
        whole disks, or None with a reason (None too when the group is gone)."""
        if self.kind not in ("v2", "blkio"):
            return None, None, "no cgroup hierarchy with the blkio (v1) or io (v2) controller is mounted"
        if self.kind == "v2" and path == "/":
            return None, None, "cgroup v2 keeps no io.stat for the root group"
        if ".." in self.root.split("/"):
            # mounted from outside this cgroup namespace: where its groups lie below the mount is unknown
            return None, None, ("the %s hierarchy is mounted from outside this cgroup namespace (its root is %s): "
                                "its groups' counters cannot be told apart" % (self.kind, self.root))
        if ".." in path.split("/"):
            return None, None, None                        # outside our cgroup namespace: not ours to read
        try:
            fd = os.open(self.directory(path), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None, None, None                        # gone
        try:
            inode = os.fstat(fd).st_ino
            if self.kind == "v2":
                values = parse_io_stat(self.read_at(fd, "io.stat"), self.counted)
            else:
                # the root's recursive files would be the whole machine's
                suffix = "" if path == "/" else "_recursive"
                values = (parse_blkio(self.read_at(fd, "blkio.throttle.io_service_bytes" + suffix), self.counted)
                          + parse_blkio(self.read_at(fd, "blkio.throttle.io_serviced" + suffix), self.counted))
            return inode, values, None
        except OSError as err:
            if err.errno != errno.ENOENT or not self.same_group(path, inode):
                return None, None, None                    # removed while we read
            if self.kind == "v2":
                parent = path.rsplit("/", 1)[0] or "/"
                return None, None, ("the io controller is not enabled for %s (add io to %s/cgroup.subtree_control)"
                                    % (path, self.directory(parent)))
            return None, None, "the blkio controller has no throttle files (kernel without CONFIG_BLK_DEV_THROTTLING)"
        finally:
            os.close(fd)

    def uncounted(self):
        """Why v1 block counters stay 0 where they do, None otherwise: the
        kernel counts a disk's I/O only once some group has a throttle rule
        for it, and then the root's files list that disk."""
        if self.kind != "blkio":
            return None
        try:
            listed = b":" in read_file(self.mount + "/blkio.throttle.io_service_bytes_recursive")
        except OSError:
            return None
        return None if listed else ("cgroup v1 blkio counts a disk only once a throttle rule exists for it and "
                                    "no disk has one: BLK columns stay 0 (a limit never reached is enough, "
                                    "e.g. MAJ:MIN 1125899906842624 in blkio.throttle.read_bps_device)")

    def same_group(self, path, inode):
        try:
            return os.stat(self.directory(path)).st_ino == inode
        except OSError:
            return False

    @staticmethod
    def read_at(fd, name):
        handle = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=fd)
        try:
            return os.read(handle, 1 << 16)
        finally:
            os.close(handle)


# ===========================================================================
# Sampling: snapshots, deltas, per-process aggregation, tasks that come and go
# ===========================================================================

def raise_nofile_limit():
    """Lift the soft descriptor limit to the hard one: the sampler keeps
    each thread's io file open. Returns the limit in force."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def subtract(a, b):
    """a - b element by element, for tuples of any one length; equal full
    counter tuples (an idle thread: most of them) give the one shared ZERO."""
    if a == b:
        return ZERO if len(a) == len(ZERO) else (0,) * len(a)
    return tuple([x - y for x, y in zip(a, b)])


def add_up(rows):
    """Element-wise sum of equally long tuples."""
    return tuple(map(sum, zip(*rows))) if rows else ZERO


class Task(object):
    """One thread as the sampler knows it.

    base: counters when first seen (zeros for a thread born after start);
    prev/cur: counters at the previous and the current sample.
    start: its start time (stat field 22), which tells incarnations of a
    TID apart; read for leaders and for tasks without an open io
    descriptor. That descriptor ties the record to one task: once the task
    dies, reads fail even if its TID is reused.
    read_at: when its delays were last read (monotonic), None before.
    """
    __slots__ = ("tid", "tgid", "fd", "exact", "comm", "uid", "nice", "policy",
                 "base", "prev", "cur", "process", "start", "read_at")
    threads = 1          # threads a task stands for (a replayed process or cgroup row: more)

    def __init__(self, tid, tgid, process):
        self.tid, self.tgid, self.process = tid, tgid, process
        self.fd, self.exact, self.start, self.read_at = None, True, None, None
        self.comm, self.uid, self.nice, self.policy = "", None, 0, 0
        self.base = self.prev = self.cur = ZERO


class Process(object):
    """A thread group; keeps what its exited threads did while watched.

    start: its leader's start time. io: its own io file at the last sample
    (None where unreadable), fd: that file held open; children: its
    reaped-children figures when last read, fresh: read at the last sample
    (else before it), steady: unchanged from the read before.
    shortfall: what that io file shows beyond the counters of its threads
    in this interval (exit records are masked to 1 KiB; the file is exact),
    shortfall_total: the same since start.
    cgroup: its cgroup path, read once (None: not read yet, '': unknown).
    """
    __slots__ = ("tgid", "exited", "start", "io", "fd", "children", "fresh", "steady", "shortfall",
                 "shortfall_total", "cgroup")

    def __init__(self, tgid, start=None, born=False):
        self.tgid, self.exited, self.start, self.fd, self.cgroup = tgid, ZERO, start, None, None
        self.shortfall = self.shortfall_total = ZERO
        # a process born after the last sample has done nothing and reaped no one before
        self.io = ZERO[:len(IO_COUNTERS)] if born else None
        self.children, self.fresh, self.steady = (b"0",) * 4 if born else None, False, born


class Sample(object):
    """What one refresh measured: live threads and the interval.
    delayacct: False where delay counters carry nothing (switched off, or
    no taskstats); source: "taskstats" or "proc"; cgroup_sampler: the
    CgroupSampler that knows its tasks' groups (None: no cgroups)."""
    __slots__ = ("tasks", "exited", "complete", "interval", "elapsed", "delayacct", "wall", "vmstat",
                 "vmstat_total", "source", "version", "cgroup_sampler")
    fields = None            # the counters a replayed log carries; None: all that version has
    host = run = iteration = None           # a replayed interval's recorded identity


# Seconds between the run gate's full sweeps.
GATE_SWEEP = 5.0
# taskstats sums of a thread group that move whenever any of its threads is
# scheduled, switched out, or (CPU time, tick by tick) keeps running, or is
# woken from block I/O (its delay is added then, before it runs).
GROUP_RAN = ("cpu_count", "nvcsw", "nivcsw", "cpu_run_real_total", "blkio_delay_total")


class RunGate(object):
    """Which known threads may have changed since their counters were read;
    the others need neither their io file read nor a taskstats GET.

    Every counter shown moves only while a thread runs or when it is woken.
    A thread group's taskstats sums (GROUP_RAN) move whenever any of its
    threads ran, keeps running (its CPU time grows) or was woken from block
    I/O, so a quiet process is passed over with one GET. In the others, a
    thread's /proc/PID/task/TID/schedstat (run time, run delay, times
    scheduled) changes whenever it ran, and one whose did not is passed
    over. Its edges delay, never lose: blkio delay is added at wake-up,
    before the thread runs (it shows in the interval it runs in), and a
    CPU-bound thread on a nohz_full core updates its schedstat once a
    second. A sweep asks taskstats about each passed-over thread of such a
    process about every GATE_SWEEP seconds, a slice of them each refresh,
    for what can be set from outside without the thread running: its name
    and nice value (in a quiet process, they show when it next runs).

    schedstat descriptors come out of the sampler's budget, opened only for
    threads of processes that ran; once the budget is spent, a thread trades
    its io descriptor for one on schedstat, which is read every refresh
    where the io file is read only when the thread ran.
    """

    def __init__(self, sampler):
        self.sampler = sampler
        self.readings = {}          # tid -> [task, schedstat descriptor or None, last schedstat]
        self.groups = {}            # tgid -> GROUP_RAN sums at the last refresh
        self.quiet = frozenset()    # thread groups none of whose threads ran
        self.sweep, self.last = GATE_SWEEP, None
        self.turn, self.turns = 0, 1    # this refresh sweeps the TIDs equal to turn modulo turns
        self.read_group = taskstats_reader(GROUP_RAN)

    def begin(self, now, tgids):
        """Start a refresh: read the thread groups' sums, before any thread."""
        self.turns = 1 if self.last is None else max(1, int(self.sweep / max(now - self.last, 1e-3)))
        self.turn, self.last = (self.turn + 1) % self.turns, now
        before, groups = self.groups, {}
        for tgid, payload in self.sampler.client.get_stats(tgids, by=TASKSTATS_CMD_ATTR_TGID):
            groups[tgid] = self.read_group(payload)
        self.groups = groups
        self.quiet = frozenset(tgid for tgid, sums in groups.items() if before.get(tgid) == sums)

    def swept(self, task):
        """Whether a thread passed over is asked taskstats all the same."""
        return task.tid % self.turns == self.turn

    def ran(self, task):
        """False when a thread of a process that is not quiet cannot have
        changed since it was last read."""
        reading = self.readings.get(task.tid)
        if reading is None or reading[0] is not task:
            reading = self.watch(task, reading)
        try:
            if reading[1] is not None:
                value = os.pread(reading[1], 128, 0)
            else:
                value = read_file("%s/%d/task/%d/schedstat" % (self.sampler.proc, task.tgid, task.tid), 128)
        except OSError:
            return True
        if value == reading[2]:
            return False
        reading[2] = value
        return True

    def watch(self, task, old):
        sampler = self.sampler
        if old is not None:
            self.release(old)
        if sampler.fd_budget <= 0 and task.fd is not None:
            sampler.close_task(task)
        fd = None
        if sampler.fd_budget > 0:
            try:
                fd = os.open("%s/%d/task/%d/schedstat" % (sampler.proc, task.tgid, task.tid),
                             os.O_RDONLY | os.O_CLOEXEC)
                sampler.fd_budget -= 1
            except OSError:
                pass
        reading = self.readings[task.tid] = [task, fd, None]
        return reading

    def release(self, reading):
        if reading[1] is not None:
            os.close(reading[1])
            reading[1] = None
            self.sampler.fd_budget += 1

    def keep(self, tasks):
        """Forget the threads that are not (or no longer) tasks; keep({})
        forgets all."""
        readings = self.readings
        for tid in [tid for tid, reading in readings.items() if tasks.get(tid) is not reading[0]]:
            self.release(readings.pop(tid))
        if not tasks:
            self.groups, self.last = {}, None


class Sampler(object):
    """Keeps the threads across refreshes and turns readings into counters.

    Exact I/O counters come from /proc/PID/task/TID/io; taskstats gives the
    delay counters and the thread's name, uid and scheduling data; an
    ExitListener, if given, the final counters of tasks that ended.
    pids: optional set of PIDs/TIDs to watch (a PID means all its threads);
    each one means the task that had it at the first sample: once that one
    is gone, the number is no longer watched.
    gated: look only at the threads that ran (RunGate).
    """

    def __init__(self, client, pids=None, proc="/proc", listener=None, all_stats=False, gated=True):
        self.client, self.proc, self.listener = client, proc, listener
        self.pids = None if pids is None else set(pids)
        self.pid_starts = {}
        self.left = set()       # watched numbers gone since the last sample: their exit records still count
        # all_stats: ask taskstats for every thread every time (columns such
        # as context switches change without any I/O)
        self.all_stats, self.version = all_stats, None
        self.tasks, self.processes, self.moved = {}, {}, []
        self.listed = {}        # tgid -> its TIDs as listed at the last sample
        # TID -> start time of a task whose exit is counted but whose zombie
        # may still be listed (None: a start time not known)
        self.ended = {}
        # leader TID -> final counters: its exit record came while the TID
        # lives on, handed by execve() to the thread that called it
        self.replaced = {}
        self.fd_budget = max(0, raise_nofile_limit() - 64)
        self.gate = RunGate(self) if gated and client is not None else None
        self.started = self.last = None
        self.vmstat_start = self.vmstat_last = None
        self.read_stats = taskstats_reader(TASK_FIELDS)
        self.read_life = taskstats_reader(("ac_etime",))       # one field: its value, in us
        self.comms = {}

    def close(self):
        if self.gate is not None:
            self.gate.keep({})
        for task in itertools.chain(self.tasks.values(), self.processes.values()):
            self.close_task(task)
        self.tasks = {}

    def close_task(self, task):
        """Close the io descriptor of a task (or of a process)."""
        if task.fd is not None:
            os.close(task.fd)
            task.fd = None
            self.fd_budget += 1

    def watched(self):
        """(tgid, [tids]) of the threads to sample; [tids] is None for all
        of its threads (see threads_of)."""
        proc = self.proc
        if self.pids is None:
            return [(pid, None) for pid in list_pids(proc)]
        groups, self.left = {}, set()
        for pid in sorted(self.pids):
            tgid = read_tgid(pid, proc)
            now = None if tgid is None else read_task_start(tgid, pid, proc)
            if now is None or self.pid_starts.setdefault(pid, now[0]) != now[0]:
                if pid in self.pid_starts:              # gone, and gone it stays
                    self.pids.discard(pid)
                    self.left.add(pid)
                continue
            if tgid == pid:
                groups[tgid] = None                     # the whole process
            elif groups.get(tgid, ()) is not None:
                groups.setdefault(tgid, set()).add(pid)
        return [(tgid, None if groups[tgid] is None else sorted(groups[tgid])) for tgid in sorted(groups)]

    def threads_of(self, tgid, listed):
        """The threads of a process. One none of whose threads ran since the
        last sample keeps that sample's listing: a thread is born or ends
        only while one of its group runs (listing thousands of threads is
        what a refresh of a quiet host would spend most on)."""
        tids = listed.get(tgid) if self.gate is not None and tgid in self.gate.quiet else None
        if tids is None:
            tids = list_threads(tgid, self.proc)
        self.listed[tgid] = tids
        return tids

    def whole(self, tgid):
        """Whether all threads of tgid are watched (its own io file then
        speaks for them)."""
        return self.pids is None or tgid in self.pids

    def read_io(self, task):
        """Exact counters of a known task; None once the task is gone."""
        try:
            if task.fd is not None:
                return parse_io(os.pread(task.fd, 512, 0))
            if task.exact:
                return parse_io(read_file("%s/%d/task/%d/io" % (self.proc, task.tgid, task.tid), 512))
        except (OSError, ValueError):
            return None
        return task.cur[:len(IO_COUNTERS)]   # masked taskstats values, refreshed below

    def displace(self, new, tid):
        """A task read earlier in this sample under a TID another process
        lists now has ended (its exit record counts it): its descriptor goes."""
        earlier = new.get(tid)
        if earlier is not None:
            self.close_task(earlier)

    def still_ended(self, tid, tgid):
        """A listed TID whose exit is already counted: its zombie (skip it),
        or a new task under the same number (forget the old one)."""
        if tid not in self.ended:
            return False
        now = read_task_start(tgid, tid, self.proc)
        if now is not None and now[1] and self.ended[tid] in (None, now[0]):
            self.ended[tid] = now[0]
            return True
        del self.ended[tid]
        return False

    def open_task(self, tid, tgid, born):
        """A task seen for the first time (or its TID reused). born: it
        started after the last sample. Its start time is read for a leader,
        and for a task whose io file cannot be held open: a held one tells
        by itself when its task has ended."""
        task = Task(tid, tgid, None)
        path = "%s/%d/task/%d/io" % (self.proc, tgid, tid)
        try:
            if self.fd_budget > 0:
                task.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                self.fd_budget -= 1
                data = os.pread(task.fd, 512, 0)
            else:
                data = read_file(path, 512)
            io = parse_io(data)
        except OSError as err:
            self.close_task(task)
            if err.errno not in (errno.EACCES, errno.EPERM) or self.client is None:
                return None
            task.exact, io = False, None
        except ValueError:
            self.close_task(task)
            return None
        if io is not None:
            task.cur = io + NO_DELAYS
        if tid == tgid or task.fd is None:
            now = read_task_start(tgid, tid, self.proc)
            if now is None:
                self.close_task(task)
                return None
            task.start = now[0]
        if self.client is None:
            try:
                task.uid = os.stat("%s/%d/task/%d" % (self.proc, tgid, tid)).st_uid
                task.comm, task.nice, task.policy = read_task_stat(tgid, tid, self.proc)
            except (OSError, ValueError):
                self.close_task(task)
                return None
        process = self.processes.get(tgid)
        if process is None or (tid == tgid and process.start not in (None, task.start)):
            if process is not None:
                self.close_task(process)
            process = self.processes[tgid] = Process(tgid, born=born)
        if tid == tgid:
            process.start = task.start
        task.process = process
        return task

    def read_process(self, process, first):
        """The change of the process's own io file since the last sample,
        where it is its threads' alone; else None.

        Its reaped-children figures are read after the io file, and only
        when that changed. No child was reaped in between the two io
        readings if the figures did not change since they were last read,
        and, if that was at the last sample (after that io reading), did not
        change from the read before either. At the baseline they are read
        before the io file too."""
        path = "%s/%d/" % (self.proc, process.tgid)
        try:
            if process.fd is None and self.fd_budget > 0:
                process.fd = os.open(path + "io", os.O_RDONLY | os.O_CLOEXEC)
                self.fd_budget -= 1
            if first:
                process.children = reaped_children(read_file(path + "stat"))
            io = parse_io(os.pread(process.fd, 512, 0) if process.fd is not None else read_file(path + "io", 512))
            moved = io != process.io
            children = reaped_children(read_file(path + "stat")) if moved or first else None
        except (OSError, ValueError):
            process.io = None
            return None
        change = None
        if moved and not first and process.io is not None and children == process.children \
                and (process.steady or not process.fresh):
            change = subtract(io, process.io)
        process.io, process.fresh = io, children is not None
        if children is not None:
            process.steady, process.children = children == process.children, children
        return change

    def sample(self):
        """Take one sample; the first call is the baseline.

        taskstats is asked for new threads (name, uid, delays), for threads
        without a readable /proc io file, and, while delay accounting is on,
        for every thread. With it off the delay counters cannot move, so a
        thread whose exact counters did not change is not asked again. Either
        way, with the run gate only the threads that ran are looked at.
        """
        first = self.started is None
        delayacct = read_delayacct()
        every_thread = delayacct is not False or self.all_stats
        io_len = len(IO_COUNTERS)
        old, new, stats_for, changes = self.tasks, {}, [], {}
        # tasks whose I/O counters may have moved: what a process's threads did is summed over them
        self.moved = moved = []
        groups = self.watched()
        gate = self.gate
        quiet = ()
        if gate is not None:
            gate.begin(time.monotonic(), [tgid for tgid, _ in groups])
            quiet = gate.quiet
        last_listing, self.listed = self.listed, {}
        for tgid, tids in groups:
            if tids is None:
                tids = self.threads_of(tgid, last_listing)
            passed_over = tgid in quiet
            for tid in tids:
                task = old.get(tid)
                if task is not None and task.tgid == tgid:
                    if passed_over or gate is not None and not gate.ran(task):
                        task.prev = task.cur
                        new[tid] = task
                        if not passed_over and gate.swept(task):
                            stats_for.append(tid)
                        continue
                    io = self.read_io(task)
                    cur = task.cur
                    # rchar never decreases for one task: a lower one is a reused
                    # TID, or (through a held descriptor) execve() from a thread
                    if io is not None and (io[READ_CHAR] >= cur[READ_CHAR] or task.fd is not None and self.listener):
                        task.prev = cur
                        if io != cur[:io_len] or not task.exact:
                            task.cur = io + cur[io_len:]
                            stats_for.append(tid)
                            moved.append(task)
                        elif every_thread:
                            stats_for.append(tid)
                        # an idle thread keeps one shared tuple for base, prev and cur
                        new[tid] = task
                        continue
                    if io is not None and not first:          # the same number, counted from now
                        task = self.open_task(tid, tgid, False)
                        if task is not None:
                            task.base = task.prev = task.cur
                            self.displace(new, tid)
                            new[tid] = task
                            stats_for.append(tid)
                            moved.append(task)
                        continue
                if self.still_ended(tid, tgid):
                    continue
                task = self.open_task(tid, tgid, not first)
                if task is not None:
                    self.displace(new, tid)
                    new[tid] = task
                    stats_for.append(tid)
                    moved.append(task)
            # read even for a quiet process: exit records drained after the
            # group's sums were read are reconciled with it (measure_processes)
            process = self.processes.get(tgid)
            if process is not None and self.whole(tgid):
                change = self.read_process(process, first)
                if change is not None:
                    changes[process] = change
        now = time.monotonic()
        if self.ended:
            listed = set(tgid for tgid, _ in groups)
            self.ended = dict((tid, start) for tid, start in self.ended.items() if tid in listed)
        self.apply_stats(new, stats_for)
        if self.client is not None:
            for tid in stats_for:
                task = new.get(tid)
                if task is not None and task.uid is None:
                    self.close_task(task)    # gone before taskstats answered
                    del new[tid]
        if gate is not None:
            gate.keep(new)
        exited = []
        if self.listener is not None:
            if first:
                self.listener.drain()        # what ended before the baseline is not ours
            else:
                exited = self.collect_exits(old, new)
        self.never_back(new)
        self.waits_within([t for t in map(new.get, stats_for) if t is not None] + exited, now,
                          None if first else now - self.last)
        gone = dict((id(t), t) for t in exited)
        gone.update((id(t), t) for t in old.values() if new.get(t.tid) is not t)
        for task in gone.values():
            self.retire(task)
        self.measure_processes(changes, new, exited)
        live = set(map(operator.attrgetter("process"), new.values()))
        for process in self.processes.values():
            if process not in live:
                self.close_task(process)
        self.processes = dict((p.tgid, p) for p in live)
        self.tasks = new
        if first:
            for task in new.values():
                task.base = task.prev = task.cur
        vmstat = read_vmstat()
        result = Sample()
        result.tasks = list(new.values())
        result.exited = exited
        result.version = self.version
        result.complete = not (self.listener is not None and self.listener.overrun)
        result.delayacct = delayacct if self.client is not None else False
        result.source = "proc" if self.client is None else "taskstats"
        result.wall = time.time()
        if first:
            self.started, self.vmstat_start = now, vmstat
            result.interval = result.elapsed = 0.0
            result.vmstat = result.vmstat_total = (0, 0)
        else:
            result.interval, result.elapsed = now - self.last, now - self.started
            result.vmstat = subtract(vmstat, self.vmstat_last)
            result.vmstat_total = subtract(vmstat, self.vmstat_start)
        self.last, self.vmstat_last = now, vmstat
        return result

    def measure_processes(self, exact, new, exited):
        """Set each process's shortfall for the interval: the change of its
        own io file, where that is its threads' alone (read_process), minus
        its threads' counters. Where a single thread of it ended, the
        shortfall is that thread's own."""
        io_len = len(IO_COUNTERS)
        for process in self.processes.values():
            process.shortfall = ZERO
        if not exact:
            return
        seen = dict((p, []) for p in exact)
        shown = [t for t in self.moved if new.get(t.tid) is t]
        for task in itertools.chain(shown, exited):
            if task.process in seen:
                seen[task.process].append(subtract(task.cur, task.prev)[:io_len])
        ended = {}
        for task in exited:
            ended.setdefault(task.process, []).append(task)
        for process, change in exact.items():
            counted = add_up(seen[process])
            shortfall = tuple([x - y for x, y in zip(change, counted)]) + NO_DELAYS
            if shortfall == ZERO:
                continue
            alone = ended.get(process, ())
            if len(alone) == 1 and min(shortfall) >= 0:
                alone[0].cur = add_up([alone[0].cur, shortfall])
                process.exited = add_up([process.exited, shortfall])
            else:
                process.shortfall = shortfall
                process.shortfall_total = add_up([process.shortfall_total, shortfall])

    def apply_stats(self, tasks, tids):
        """Merge taskstats replies: delays always, I/O only where /proc failed."""
        if self.client is None:
            return
        io_len, read_stats = len(IO_COUNTERS), self.read_stats
        for tid, payload in self.client.get_stats(tids):
            task = tasks.get(tid)
            if task is None:
                continue
            if self.version is None:
                self.version = taskstats_version(payload)
            counters = self.describe(task, read_stats(payload))
            cur = (task.cur[:io_len] if task.exact else counters[:io_len]) + counters[io_len:]
            if cur != task.cur:
                task.cur = cur

    def describe(self, task, values):
        """Set a task's name, uid and scheduling from a taskstats reader
        tuple; return its counters."""
        raw_comm, task.uid, nice, task.policy = TASK_NAMING(values)
        comm = self.comms.get(raw_comm)
        if comm is None:
            if len(self.comms) > 4096:      # churn with unique names: stay bounded
                self.comms.clear()
            comm = self.comms[raw_comm] = decode_comm(raw_comm)
        task.comm = comm
        task.nice = nice - 256 if nice > 127 else nice        # a signed char in a u8
        return values[TASK_HEAD:]

    def owner(self, tid, tgid, old, new, done):
        """The known task an exit record is for, or None for a task born and
        gone between samples. A task read this time through its own
        descriptor has ended since (a leader may instead have been replaced
        by execve() from a thread: see collect_exits); a task opened this
        time that still lives (its held descriptor still reads, or its
        start time is the same) is a later incarnation of the TID, so the
        record is an older one's."""
        task = new.get(tid)
        if task is not None and task.tgid == tgid and id(task) not in done:
            if task is old.get(tid):
                return task
            if tid != tgid and task.fd is not None:
                if self.read_io(task) is None:
                    return task
            else:
                now = read_task_start(tgid, tid, self.proc)
                if now is None or now[1] or now[0] != task.start:
                    return task
        task = old.get(tid)
        if task is not None and task.tgid == tgid and id(task) not in done and new.get(tid) is not task:
            return task
        return None

    def collect_exits(self, old, new):
        """Tasks that ended since the last sample, from the kernel's exit
        records, with final counters: a zombie's exact ones where it can
        still be read, else the larger of the last exact reading and the
        record's (masked to 1024 steps)."""
        exited, born, done = [], {}, set()
        for tid, payload in self.listener.drain():
            values = self.read_stats(payload)
            tgid = values[TASK_TGID] or tid           # before v12 records name no group
            task = self.owner(tid, tgid, old, new, done)
            if task is not None:
                done.add(id(task))
                if new.get(tid) is not task:          # not seen this time: counted up to last sample
                    task.prev = task.cur
                    final = tuple(map(max, task.cur, self.describe(task, values)))
                elif tid == tgid and self.lives_on(task):
                    self.replaced[tid] = self.describe(task, values)
                    continue
                else:
                    io = self.read_io(task) if task.fd is not None else None
                    final = tuple(map(max, task.cur, self.describe(task, values)))
                    if io is not None:                # a zombie, still exact
                        final = io + final[len(io):]
                    del new[tid]
                if tid == tgid:                       # only a leader lingers as a zombie
                    self.ended[tid] = task.start
            else:
                if self.pids is not None and not (self.pids & {tid, tgid} or self.left & {tid, tgid}):
                    continue
                process = self.processes.get(tgid) or born.get(tgid)
                if process is None:
                    process = born[tgid] = Process(tgid)
                task = Task(tid, tgid, process)
                final = self.lived(self.describe(task, values), payload)
                if tid == tgid:
                    final = self.zombie_counters(task, final)
                    self.ended[tid] = task.start
            task.cur = final
            exited.append(task)
        self.hand_over(old, new, exited, done)
        return exited

    def zombie_counters(self, leader, final):
        """A leader born and gone between samples may still be a zombie:
        then its io file gives the exact counters. Sets its start time."""
        now = read_task_start(leader.tgid, leader.tid, self.proc)
        if now is None or not now[1]:
            return final
        leader.start = now[0]
        try:
            io = parse_io(read_file("%s/%d/task/%d/io" % (self.proc, leader.tgid, leader.tid), 512))
        except (OSError, ValueError):
            return final
        return tuple(map(max, io, final)) + final[len(io):]

    def lives_on(self, leader):
        """A leader whose exit record came while its TID still runs under
        its start time: execve() from a thread gave that thread the TID."""
        now = read_task_start(leader.tgid, leader.tid, self.proc)
        return now is not None and not now[1] and now[0] == leader.start

    def never_back(self, new):
        """A task whose reading went down with no exit record to explain it
        (execve() from a thread whose record the kernel dropped): counted
        from this reading on, keeping what it did so far."""
        io_len = len(IO_COUNTERS)
        for task in self.moved:
            if new.get(task.tid) is task and task.tid not in self.replaced \
                    and any(map(operator.lt, task.cur[:io_len], task.prev[:io_len])):
                task.base = tuple([c - p + b for c, p, b in zip(task.cur[:io_len], task.prev, task.base)]) \
                    + task.base[io_len:]
                task.prev = task.cur[:io_len] + task.prev[io_len:]

    def waits_within(self, tasks, now, interval):
        """The tasks whose delays were read at now (interval: since the last
        sample; None at the first): a thread waits at most as long as the
        time between two readings of it. The kernel adds a wait when it ends,
        from the time it began: one begun while kernel.task_delayacct was off
        is counted from an older start, or from 0 (the time since boot), once
        it is switched on. A delay that grew by more than the interval shows
        as the interval (100 %), and adds to the -a totals at most the time
        since the thread was last read (more than the interval for a thread
        the run gate passed over while it was blocked)."""
        if interval is not None:
            shortest, waits = int(interval * 1e9), operator.itemgetter(*WAIT_TOTALS)
            # an unchanged thread keeps one tuple; the others, the sum of their waits first,
            # in C loops: one wait over the interval takes it over
            moved = [t for t in tasks if t.cur is not t.prev]
            waited = zip(moved, map(sum, map(waits, [t.cur for t in moved])),
                         map(sum, map(waits, [t.prev for t in moved])))
            for task in [task for task, total, before in waited if total - before > shortest]:
                limit = shortest if task.read_at is None else int((now - task.read_at) * 1e9)
                cur, prev = task.cur, task.prev
                grew = [(i, cur[i] - prev[i]) for i in WAIT_TOTALS if cur[i] - prev[i] > shortest]
                if grew:
                    prev, base = list(prev), list(task.base)
                    for i, delta in grew:
                        prev[i] += delta - shortest
                        base[i] += max(0, delta - limit)
                    task.prev, task.base = tuple(prev), tuple(base)
        for task in tasks:
            task.read_at = now

    def lived(self, counters, payload):
        """The counters of a task born and gone between samples: none of its
        waits longer than its life (the record's ac_etime; see waits_within)."""
        life = self.read_life(payload) * 1000
        if all(counters[i] <= life for i in WAIT_TOTALS):
            return counters
        return tuple([min(value, life) if i in WAIT_TOTALS else value for i, value in enumerate(counters)])

    def hand_over(self, old, new, exited, done):
        """After execve() from a thread: the old leader ends (its last
        reading before the exec, or the record), and the thread that called
        execve(), the one of the process that vanished without an exit
        record, goes on under the leader's TID, its counters continuing. If
        the exec came after this sample's reading, that thread has not
        vanished yet: wait for the next sample. Without a single such
        thread, the TID is counted from now on."""
        io_len = len(IO_COUNTERS)
        for tid, record in list(self.replaced.items()):
            leader = new.get(tid)
            if leader is None:
                del self.replaced[tid]
                continue
            heirs = [t for t in old.values() if t.tgid == leader.tgid and t is not leader
                     and id(t) not in done and new.get(t.tid) is not t]
            if not heirs:
                continue
            del self.replaced[tid]
            reading, heir = leader.cur, heirs[0]
            if len(heirs) == 1 and all(map(operator.le, heir.cur[:io_len], reading[:io_len])):
                heir.prev = heir.cur
                self.close_task(heir)
            else:
                heir = Task(tid, leader.tgid, leader.process)
                heir.base = heir.prev = reading
            heir.tid, heir.start, heir.cur, heir.fd, leader.fd = tid, leader.start, reading, leader.fd, None
            heir.comm, heir.uid, heir.nice, heir.policy = leader.comm, leader.uid, leader.nice, leader.policy
            new[tid] = heir
            self.moved.append(heir)
            leader.cur = tuple(map(max, leader.prev, record))
            exited.append(leader)
            done.add(id(leader))

    def retire(self, task):
        """A task that is gone: its process keeps what it did while watched."""
        self.close_task(task)
        process = task.process
        process.exited = add_up([process.exited, subtract(task.cur, task.base)])


def disk_write(values):
    """Bytes written to disk: dirtied minus cancelled by truncation, never negative."""
    return max(0, values[WRITE_BYTES] - values[CANCELLED_WRITE_BYTES])


def disk_io_rank(row):
    """Order for 'who did most I/O': disk bytes, then VFS bytes."""
    values = row.values
    return values[READ_BYTES] + disk_write(values), values[READ_CHAR] + values[WRITE_CHAR]


class Row(object):
    """One line of output: a thread, its counters over the shown span
    (interval, or since start with -a); exited: it has ended. kind: what
    the row stands for: 'thread', 'process' or 'cgroup'."""
    __slots__ = ("ident", "tgid", "uid", "task", "values", "span", "exited", "members")
    kind = "thread"
    name = None         # the name of a row that no task names (a cgroup's)
    block = None        # block-layer counters: a cgroup row's

    def __init__(self, ident, tgid, uid, task, values, span, exited=False, members=None):
        self.ident, self.tgid, self.uid, self.task = ident, tgid, uid, task
        self.values, self.span, self.exited = values, span, exited
        self.members = members or (task,)     # the threads behind the row, for gauges

    def threads(self):
        return sum(t.threads for t in self.members)       # a replayed task may stand for several

    def number(self):
        """The row's number: the thread's (the process's) id."""
        return self.ident

    def has_pid(self, pids):
        """Whether the row is one of these processes or threads."""
        return self.ident in pids or self.tgid in pids

    def cgroup_path(self):
        """Its process's cgroup path: None where not read, '' where unknown."""
        return self.task.process.cgroup

    def live_task(self):
        """The task whose io priority and arguments are the row's; None once
        it ended (its TID may be someone else's by now)."""
        return None if self.exited else self.task

    def label_tasks(self):
        """The tasks whose recorded user names the row: its own (a process's leader)."""
        return (self.task,)


class ProcessRow(Row):
    """A process: its threads (members) summed, task its leader."""
    __slots__ = ()
    kind = "process"


# -o levels, in the order the o key cycles them: what counts as doing I/O.
# disk is iotop's: storage bytes, or waits for block I/O or swap-in (delay
# accounting); any adds the VFS bytes and read/write syscalls.
ONLY_LEVELS = ("off", "disk", "any")
ONLY_COUNTERS = {
    "disk": operator.itemgetter(*[COUNTERS.index(name) for name in ("read_bytes", "write_bytes") + DELAY_COUNTERS]),
    "any": operator.itemgetter(*map(COUNTERS.index, RECORD_COUNTERS)),
}


def did_io(now, before, only):
    """Whether the counters moved between two readings, as -o level `only` counts I/O."""
    pick = ONLY_COUNTERS[only]
    return now != before and pick(now) != pick(before)


def deltas(tasks, accumulated):
    """What the tasks that moved did over the span (since their first
    reading with accumulated, else since the last sample). Idle threads,
    most of them, subtract to the shared ZERO and are left out: a sum over
    a process of 10,000 threads costs what its busy ones do."""
    if accumulated:
        changes = [subtract(t.cur, t.base) for t in tasks]
    else:
        changes = [subtract(t.cur, t.prev) for t in tasks]
    return [change for change in changes if change is not ZERO]


def build_rows(sample, processes=False, accumulated=False, uids=None, only=None, cgroups=False):
    """Rows for one sample: per thread, or per process summing its threads
    (including the last counters of threads that exited while watched), or
    with cgroups per group (a CgroupSampler's sample).
    only: None or 'off' for every row, 'disk' or 'any' for the rows that
    did I/O as that -o level counts it."""
    only = None if only == "off" else only
    if cgroups:
        return sample.cgroup_sampler.rows(sample, accumulated, only, uids)
    span = sample.elapsed if accumulated else sample.interval
    tasks, exited = sample.tasks, sample.exited
    if uids is not None:
        tasks = [t for t in tasks if t.uid in uids]
        exited = [t for t in exited if t.uid in uids]
    if not processes:
        rows = []
        for members, gone in ((tasks, False), (exited, True)):
            if accumulated:
                if only:
                    members = [t for t in members if t.cur is not t.base and did_io(t.cur, t.base, only)]
                rows.extend(Row(t.tid, t.tgid, t.uid, t, subtract(t.cur, t.base), span, gone) for t in members)
            else:
                if only:
                    # an idle thread's readings are one tuple: no call for most of them
                    members = [t for t in members if t.cur is not t.prev and did_io(t.cur, t.prev, only)]
                rows.extend(Row(t.tid, t.tgid, t.uid, t, subtract(t.cur, t.prev), span, gone) for t in members)
        return rows
    groups = {}
    for task in tasks:
        groups.setdefault(task.process, ([], []))[0].append(task)
    for task in exited:
        groups.setdefault(task.process, ([], []))[1].append(task)
    rows = []
    for process, (members, gone) in groups.items():
        everyone = members + gone
        leader = next((t for t in everyone if t.tid == process.tgid), everyone[0])
        # shortfall: what the process's own io file adds to exit records' masked counters
        if accumulated:
            # exited threads are already in process.exited
            values = add_up(deltas(members, True) + [process.exited, process.shortfall_total])
        else:
            values = add_up(deltas(everyone, False) + [process.shortfall])
        if not only or did_io(values, ZERO, only):
            rows.append(ProcessRow(process.tgid, process.tgid, leader.uid, leader, values, span, not members,
                                   everyone))
    return rows


def fold_cgroup(path, depth):
    """The ancestor of a cgroup path at depth components ('/a/b' for
    '/a/b/c' at 2); the path itself when it is shallower or depth is None."""
    if depth is None or not path:
        return path
    parts = path.strip("/").split("/")
    return path if len(parts) <= depth else "/" + "/".join(parts[:depth])


class Cgroup(object):
    """One group across refreshes. departed: per user, the counters of its
    processes that have ended (a new dict on each change: a frozen copy of
    the group keeps its own); block readings: base (first), prev, cur;
    carried: what earlier groups under the same path moved; known: the
    last read worked; read_at: the refresh it was last read at."""
    __slots__ = ("path", "name", "departed", "inode", "base", "prev", "cur", "carried", "known", "read_at")

    def __init__(self, path):
        self.path, self.name, self.departed = path, cgroup_name(path), {}
        self.inode, self.known, self.read_at = None, False, None
        self.base = self.prev = self.cur = self.carried = BLOCK_ZERO

    def update_block(self, inode, values, baseline=None, resumed=False):
        """A new block reading; a recreated group (new inode, or counters
        that went back) starts from zero, keeping the old one's total.
        baseline: what the first reading counts from (None: itself);
        resumed: refreshes went by unread, so this interval counts from now
        (what moved meanwhile goes to the total alone)."""
        self.known = values is not None
        if values is None:
            self.prev = self.cur
            return
        if self.inode is None:
            self.base = self.prev = values if baseline is None else baseline
        elif inode != self.inode or any(v < c for v, c in zip(values, self.cur)):
            self.carried = add_up([self.carried, subtract(self.cur, self.base)])
            self.base = self.prev = BLOCK_ZERO
        else:
            self.prev = values if resumed else self.cur
        self.inode, self.cur = inode, values

    def block(self, accumulated):
        if not self.known:
            return None
        if accumulated:
            return add_up([self.carried, subtract(self.cur, self.base)])
        return subtract(self.cur, self.prev)


class CgroupRow(Row):
    """A row for one cgroup: ident is its path ('': tasks that ended in a
    group never read), name its readable name, thread_count the threads
    behind it (a replayed task may stand for several); block: (rbytes,
    wbytes, rios, wios) over the span, None when unknown. No task is the
    row's own (task None); uid: its members' one user, else None."""
    __slots__ = ("name", "block", "thread_count")
    kind = "cgroup"

    def __init__(self, path, uid, values, span, members, thread_count, block, name=None):
        Row.__init__(self, path, None, uid, None, values, span)
        self.members, self.thread_count, self.block = members, thread_count, block
        self.name = cgroup_name(path) if name is None else name

    def threads(self):
        return self.thread_count

    number = threads            # a group is numbered by its threads

    def has_pid(self, pids):
        """Whether one of these processes or threads is in the group."""
        return any(t.tid in pids or t.tgid in pids for t in self.members)

    def cgroup_path(self):
        return self.ident

    def live_task(self):
        return None

    def label_tasks(self):
        """Every member: a group has a user where they all share one."""
        return self.members


class CgroupSampler(object):
    """A Sampler whose samples also know each process's cgroup (read once
    per process). With grouping, its rows() are one row per group (-G) with
    the group's block-layer counters, groups deeper than depth folded into
    their ancestor; present: each process's group, owners: its user (its
    first thread's), members: each group's (live, ended) threads. uids:
    the users whose groups are listed (None: anyone's, as the screen's f
    key may choose): the block counters of other groups are not read."""

    def __init__(self, sampler, source, depth=None, uids=None, grouping=False):
        self.sampler, self.source, self.depth, self.uids, self.grouping = sampler, source, depth, uids, grouping
        self.groups, self.present, self.owners, self.members = {}, {}, {}, {}
        self.refreshes = 0          # block readings taken (Cgroup.read_at)
        self.notice = None

    def close(self):
        self.sampler.close()

    def group_of(self, process):
        if process.cgroup is None:
            process.cgroup = self.source.membership(process.tgid) or ""
        return fold_cgroup(process.cgroup, self.depth)

    def sample(self):
        return self.grouped(self.sampler.sample())

    def grouped(self, sample):
        """The sample, its tasks' cgroups known and (with grouping) its groups formed."""
        sample.cgroup_sampler = self
        if not self.grouping:            # just the cgroup field and column
            for task in sample.tasks:
                if task.process.cgroup is None:
                    self.group_of(task.process)
            return sample
        groups = self.groups
        present, owners, members = {}, {}, {}
        for index, tasks in enumerate((sample.tasks, sample.exited)):
            for task in tasks:
                process = task.process
                key = present.get(process)
                if key is None:
                    # a process known only from exit records: its cgroup is unknown
                    key = present[process] = self.group_of(process) if index == 0 or process.cgroup else ""
                    owners[process] = task.uid
                    if key not in members:
                        members[key] = ([], [])
                members[key][index].append(task)
        for process, key in self.present.items():
            if process not in present:
                departed, uid = dict(groups[key].departed), self.owners[process]
                departed[uid] = add_up([departed.get(uid, ZERO), process.exited, process.shortfall_total])
                groups[key].departed = departed
        for key in members:
            if key not in groups:
                groups[key] = Cgroup(key)
        self.present, self.owners, self.members = present, owners, members
        self.read_block()
        return sample

    def frozen(self, twins):
        """A copy whose rows() stay those of this sample; twins: the copied
        sample's task for each task (by id), its processes likewise."""
        import copy
        twin = copy.copy(self)
        twin.groups = dict((key, copy.copy(group)) for key, group in self.groups.items())
        twin.present = dict((twins[id(process)], key) for process, key in self.present.items())
        twin.owners = dict((twins[id(process)], uid) for process, uid in self.owners.items())
        twin.members = dict((key, tuple([twins[id(t)] for t in tasks] for tasks in lists))
                            for key, lists in self.members.items())
        return twin

    def read_block(self):
        """Read the block counters of the groups this sample can show: those
        with threads now (of the users in uids, where given). Any other group
        keeps its last reading (its -a total); read again later, its interval
        counts from then on."""
        uids = self.uids
        self.refreshes += 1
        for key, (live, gone) in self.members.items():
            if not key or (uids is not None and not any(t.uid in uids for t in itertools.chain(live, gone))):
                continue
            group = self.groups[key]
            inode, values, reason = self.source.block(group.path)
            resumed = group.read_at not in (None, self.refreshes - 1)
            group.update_block(inode, values, self.source.baseline, resumed)
            group.read_at = self.refreshes
            if reason and (self.notice is None or group.path != "/"):     # the root's reason last
                self.notice = "BLK columns n/a: %s" % reason

    def rows(self, sample, accumulated, only, uids=None):
        """One CgroupRow per group with threads this sample (with accumulated:
        per group seen during the run); uids: only these users' threads."""
        span = sample.elapsed if accumulated else sample.interval
        # per process what its threads' counters miss, as for -P: ended threads
        # (with accumulated) and the shortfall its own io file shows
        extras = {}
        for process, key in self.present.items():
            if uids is not None and self.owners[process] not in uids:
                continue
            if accumulated:
                extras.setdefault(key, []).extend((process.exited, process.shortfall_total))
            else:
                extras.setdefault(key, []).append(process.shortfall)
        rows = []
        for key in (self.groups if accumulated else self.members):
            group = self.groups[key]
            live, gone = self.members.get(key, ((), ()))
            departed = list(group.departed.values())
            if uids is not None:
                live, gone = [t for t in live if t.uid in uids], [t for t in gone if t.uid in uids]
                departed = [d for uid, d in group.departed.items() if uid in uids]
                if not (live or gone or (accumulated and departed)):
                    continue
            everyone = list(live) + list(gone)
            if accumulated:
                moved = deltas(live, accumulated) + departed
            else:
                moved = deltas(everyone, accumulated)
            values = add_up(moved + extras.get(key, []))
            block = group.block(accumulated)
            if only and not did_io(values, ZERO, only) and not any(block or ()):
                continue
            users = {t.uid for t in everyone}
            threads = sum(t.threads for t in everyone)
            rows.append(CgroupRow(key, users.pop() if len(users) == 1 else None, values, span, everyone, threads,
                                  block, group.name))
        return rows


def listed_block_io(rows):
    """(read, write) bytes the listed groups moved at the block layer, each
    byte once: a group's counters include its subgroups', so a group below
    another listed one is left out (the root's own counters are not recursive)."""
    paths = set(row.ident for row in rows if row.block is not None)
    read = write = 0
    for row in rows:
        if row.block is None:
            continue
        parts = row.ident.strip("/").split("/")
        if any("/" + "/".join(parts[:n]) in paths for n in range(1, len(parts))):
            continue
        read, write = read + row.block[BLOCK_READ], write + row.block[BLOCK_WRITE]
    return read, write

class RunTotals(object):
    """--summary: the tasks (or processes) that did most disk I/O over the
    whole run, those that ended during it included."""

    def __init__(self, processes, uids, count=10, cgroups=False):
        self.processes, self.uids, self.count, self.cgroups = processes, uids, count, cgroups
        self.ended, self.last = [], None

    def add(self, sample):
        self.last = sample
        ended = [r for r in build_rows(sample, self.processes, True, self.uids, cgroups=self.cgroups) if r.exited]
        # ended rows never change again: only the best `count` can still make the top
        self.ended = sorted(self.ended + ended, key=disk_io_rank, reverse=True)[:self.count]

    def top(self):
        """The top rows; tasks that did no I/O at all are no contenders."""
        live = [r for r in build_rows(self.last, self.processes, True, self.uids, cgroups=self.cgroups)
                if not r.exited]
        rows = sorted(self.ended + live, key=disk_io_rank, reverse=True)[:self.count]
        return [r for r in rows if disk_io_rank(r) != (0, 0)]


# ===========================================================================
# Replay: the intervals of a recorded JSON Lines log (schema 1) as samples
# ===========================================================================

LOG_SCHEMA = 1
GZIP_MAGIC = b"\x1f\x8b"
RECORDED_KINDS = frozenset(("thread", "process"))     # cgroup rows are tasks only to -G
REMEMBERED_RUNS = 64        # interleaved runs whose tasks a replay carries at once
# Bytes of the longest line a replay reads: a record is far shorter (its command line and
# arguments are 4 KiB each, 6 times that where every byte is escaped); NULs a crash left are longer.
LONGEST_LINE = 1 << 20


def parse_time(text):
    """Seconds since the epoch for RFC 3339, 'YYYY-MM-DD HH:MM[:SS]' or
    'HH:MM[:SS]' (today); local time unless an offset is given. None when
    the text is none of these."""
    import calendar
    import datetime
    import re
    match = re.match(r"\s*(?:(\d{4})-(\d\d)-(\d\d)[Tt ]\s*)?(\d\d?):(\d\d)(?::(\d\d)(\.\d{1,9})?)?"
                     r"\s*([Zz]|[+-]\d\d:?\d\d)?\s*$", text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if year is None:
        today = time.localtime()
        year, month, day = today.tm_year, today.tm_mon, today.tm_mday
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return None
    fraction = float(fraction) if fraction else 0.0
    if zone is None:
        try:
            return time.mktime(moment.timetuple()) + fraction       # isdst -1: the date's own DST
        except (OverflowError, ValueError):
            return None
    offset = 0 if zone in "Zz" else int(zone[0] + "1") * (int(zone[1:3]) * 3600 + int(zone[-2:]) * 60)
    return calendar.timegm(moment.timetuple()) - offset + fraction


class RecordedLog(object):
    """The schema-1 records of JSON Lines logs, file after file, each plain
    or gzip (told by its first bytes). Lines that cannot be used are
    counted, never fatal: a run killed mid-write leaves half a line."""

    def __init__(self, paths):
        self.paths = paths
        self.not_json = self.other_schema = self.malformed = self.too_long = 0
        self.cut_short = []          # compressed files that end early

    def open(self, path):
        """(line source, file to close) for one path; '-' is stdin."""
        if path == "-":
            if sys.stdin is None:
                raise IotopError("standard input is closed")
            raw = sys.stdin.buffer
        else:
            try:
                raw = open(path, "rb")
            except OSError as err:
                raise IotopError("cannot read %s: %s" % (path, err.strerror or err))
        if raw.peek(2)[:2] == GZIP_MAGIC:
            import gzip
            return gzip.GzipFile(fileobj=raw, mode="rb"), raw
        return raw, raw

    def records(self):
        for path in self.paths:
            lines, raw = self.open(path)
            try:
                for record in self.parse(lines, path, lines is not raw):
                    yield record
            finally:
                if raw is not sys.stdin.buffer:
                    raw.close()

    def parse(self, lines, path, compressed):
        import zlib
        try:
            for line in bounded_lines(lines):
                if line is None:
                    self.too_long += 1
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    self.not_json += bool(line.strip())
                    continue
                if type(record) is not dict:
                    self.not_json += 1
                elif record.get("schema") != LOG_SCHEMA:
                    self.other_schema += 1
                else:
                    yield record
        except (EOFError, zlib.error) as err:
            self.cut_short.append("%s (%s)" % (path, err))
        except OSError as err:
            if not compressed:
                raise IotopError("cannot read %s: %s" % (path, err.strerror or err))
            self.cut_short.append("%s (%s)" % (path, err))     # not gzip after all, or damaged

    def hosts(self, enough=2):
        """The hosts the files name, up to enough (the scan stops there),
        found without parsing the lines (a few per cent of a replay's time):
        the values of "host" fields (a quote inside a JSON string is escaped:
        none is taken from a command). None unless every file is a regular
        one: stdin, a FIFO, a device can be read only once, or never end."""
        import re
        import stat
        import zlib
        try:
            if "-" in self.paths or not all(stat.S_ISREG(os.stat(path).st_mode) for path in self.paths):
                return None
        except OSError:
            return None             # the reading proper says why
        field, tokens, found = re.compile(br'"host"\s*:\s*"((?:[^"\\\n]|\\.)*)"'), set(), set()
        for path in self.paths:
            lines, raw = self.open(path)
            tail = b""
            try:
                while len(found) < enough:
                    chunk = lines.read(1 << 20)
                    if not chunk:
                        break
                    data = tail + chunk
                    tail = data[-4096:]             # a field the chunk's end cuts is whole in the next
                    for token in set(match.group(1) for match in field.finditer(data)) - tokens:
                        tokens.add(token)           # the same name may be escaped in more than one way
                        try:
                            found.add(json.loads(b'"%s"' % token))
                        except ValueError:
                            pass
            except (EOFError, OSError, zlib.error):
                pass                                # the reading proper says what is wrong with the file
            finally:
                raw.close()
        return found

    def notices(self):
        said = []
        if self.not_json:
            said.append("skipped %d line%s that are not JSON (or were cut short)"
                        % (self.not_json, "" if self.not_json == 1 else "s"))
        if self.other_schema:
            said.append("skipped %d line%s of another log schema than %d"
                        % (self.other_schema, "" if self.other_schema == 1 else "s", LOG_SCHEMA))
        if self.too_long:
            said.append("skipped %d line%s longer than %d MiB (no record is)"
                        % (self.too_long, "" if self.too_long == 1 else "s", LONGEST_LINE >> 20))
        if self.malformed:
            said.append("skipped %d line%s with missing or mistyped fields"
                        % (self.malformed, "" if self.malformed == 1 else "s"))
        said.extend("compressed log ends early: %s" % where for where in self.cut_short)
        return said


def bounded_lines(stream, longest=LONGEST_LINE):
    """The lines of a binary stream, none held longer than longest bytes:
    a longer one is read past in pieces and given as None."""
    while True:
        line = stream.readline(longest)
        if len(line) < longest or line.endswith(b"\n"):
            if not line:
                return
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = stream.readline(longest)
        yield None


def recorded_intervals(records):
    """The lines of one interval at a time: lines of one (host, run,
    iteration), ended by their summary line or by a line of another interval."""
    key, lines = None, []
    for record in records:
        kind = record.get("type")
        if kind != "task" and kind != "summary":
            continue                                  # "top" lines: a replay ranks its own window
        this = (record.get("host"), record.get("run"), record.get("iteration"))
        if this != key and lines:
            yield lines
            lines = []
        key = this
        lines.append(record)
        if kind == "summary":
            yield lines
            key, lines = None, []
    if lines:
        yield lines


def whole_numbers(record, names):
    """The record's values for names, null as 0; None when one is not a
    whole number the kernel could have counted (a u64)."""
    values = tuple([record.get(name) or 0 for name in names])
    for value in values:
        if type(value) is not int or not 0 <= value < 1 << 64:
            return None
    return values


def text_or_none(value):
    return value if isinstance(value, str) else None


class RecordedTask(Task):
    """A task of a replayed run, with the labels the log recorded."""
    __slots__ = ("user", "prio", "command", "argv", "process_command", "threads")

    def label(self, record):
        uid = record.get("uid")
        self.uid = uid if type(uid) is int else None
        self.user, self.prio = text_or_none(record.get("user")), text_or_none(record.get("prio"))
        self.command = text_or_none(record.get("command")) or ""
        self.process.cgroup = text_or_none(record.get("cgroup")) or ""
        members = record.get("members")
        self.threads = members if type(members) is int and members > 0 else 1
        argv = record.get("argv")
        self.argv = argv if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv) else None
        self.process_command = None if self.argv is None else " ".join(self.argv)
        # the kernel's name for it is not in the log: the program's, as ps shows it
        self.comm = (os.path.basename(self.argv[0]) if self.argv else self.command.strip("[]"))[:15]


def recorded_command(task, threads):
    """The text a row of this task shows: a process row shows its command line
    without the thread name the log may have added."""
    if threads or task.tid == task.tgid or task.process_command is None:
        return task.command
    return task.process_command


class RecordedBlock(object):
    """The block-layer counters of a log written with -G, as a CgroupSampler
    reads them live: per cgroup path, totals from the replay's start; one
    per recorded run (a group's counters are its host's)."""
    ABSENT = "the log has no block-layer counters for these groups (it was written without -G)"
    UNREAD = "the log has no block-layer counters for some of its groups (the run that wrote it could not read them)"
    baseline = BLOCK_ZERO    # the totals count from a group's first line

    def __init__(self):
        self.totals, self.listed = {}, set()

    def add(self, path, values):
        """A group's line: values over its interval, None where the log has none."""
        self.listed.add(path)
        if values is not None:
            total = self.totals.get(path, BLOCK_ZERO)
            self.totals[path] = tuple(map(operator.add, total, values))

    def block(self, path):
        """(inode, counters, why not) as CgroupSource.block answers. A group
        the replay folds (--cgroup-depth) that the log never lists itself:
        the logged groups below it, each byte once (a group's counters hold
        its subgroups', as listed_block_io counts them). A group the log
        lists without counters (cgroup v2's root has none) has none."""
        total = self.totals.get(path)
        if total is None and path in self.listed:
            return None, None, self.UNREAD
        if total is None and path != "/":
            prefix = path.rstrip("/") + "/"
            below = [p for p in self.totals if p.startswith(prefix)]
            below = [p for p in below if not any(p.startswith(q + "/") for q in below)]
            total = add_up([self.totals[p] for p in below]) if below else None
        return (None, None, self.ABSENT) if total is None else (0, total, None)


class RecordedSample(Sample):
    """A sample replayed from a log; fields: the counters the log carries."""
    __slots__ = ("fields", "host", "run", "iteration", "start")


class RecordedRun(object):
    """One recorded run as the sampler would have seen it: its tasks carried
    from interval to interval, counters summed from the window's start;
    groups: with -G, the CgroupSampler that groups its intervals, blocks its
    RecordedBlock (a group's totals, -a ones too, are its own run's)."""

    def __init__(self, groups=None, blocks=None):
        self.groups, self.blocks = groups, blocks
        self.tasks, self.processes, self.logged = {}, {}, {}
        self.elapsed, self.vmstat_total, self.vmstat_logged, self.seconds_logged = 0.0, (0, 0), (0, 0), 0.0
        # a log without -o lists idle tasks too: a task it leaves out has ended
        self.lists_idle = False

    def counters(self, record, key, names=COUNTERS):
        """The record's counters over its interval (logs written with -a hold totals)."""
        values = whole_numbers(record, names)
        if values is None or record.get("accumulated") is not True:
            return values
        previous = self.logged.get(key, ZERO)
        self.logged[key] = ZERO if values == ZERO else values        # the idle share one tuple
        return subtract(values, previous)

    def length(self, record, seconds):
        """Seconds the interval covers (logs written with -a give the time since the run's start)."""
        if record.get("accumulated") is not True:
            return seconds
        previous, self.seconds_logged = self.seconds_logged, seconds
        return seconds - previous

    def actual(self, summary):
        """The block layer's (read, write) bytes over the interval, from the summary line."""
        values = whole_numbers(summary, ("actual_read_bytes", "actual_write_bytes"))
        if values is None or summary.get("accumulated") is not True:
            return values or (0, 0)
        previous, self.vmstat_logged = self.vmstat_logged, values
        return subtract(values, previous)

    def retire(self, key, task):
        del self.tasks[key]
        self.logged.pop(key, None)
        task.process.exited = add_up([task.process.exited, subtract(task.cur, task.base)])

    def forget_idle(self):
        """Another run's interval came: forget the tasks that never did
        anything. A log that lists idle tasks lists them again while they
        live, and they come back as they were; a remembered run (up to
        REMEMBERED_RUNS) keeps only the others."""
        if self.lists_idle:
            for key in [key for key, t in self.tasks.items() if t.cur is ZERO and t.process.exited is ZERO]:
                del self.tasks[key]
            self.processes = dict((t.tgid, t.process) for t in self.tasks.values())
            if self.groups is not None:         # nor does its CgroupSampler hold them
                self.forget_idle_members()

    def forget_idle_members(self):
        """The run's CgroupSampler keeps only the tasks and processes the
        run keeps (an idle process that ended leaves nothing to a group)."""
        groups, kept = self.groups, set(self.tasks.values())
        groups.present = dict((p, key) for p, key in groups.present.items() if self.processes.get(p.tgid) is p)
        groups.owners = dict((p, uid) for p, uid in groups.owners.items() if p in groups.present)
        groups.members = dict((key, tuple([t for t in tasks if t in kept] for tasks in lists))
                              for key, lists in groups.members.items())

    def skip(self, rows, summary):
        """An interval outside the window: only what later differences need."""
        for record in rows:
            if record.get("accumulated") is True:
                self.counters(record, (record.get("kind"), record.get("id")))
                self.block(record)
        self.actual(summary)

    def block(self, record):
        """A cgroup row's block-layer counters over its interval; None where the log has none."""
        if record.get("kind") != "cgroup" or any(record.get(name) is None for name in BLOCK_COUNTERS):
            return None
        return self.counters(record, ("block", record.get("id")), BLOCK_COUNTERS)

    def interval(self, rows, summary, pids, log):
        """The RecordedSample of one interval's lines."""
        seen, exited, fields = set(), [], None
        gone = {}           # key -> its task that ended in this interval
        # a task that ended before the one its id went to in the same interval (logs list the busier first)
        for record in sorted(rows, key=lambda record: record.get("exited") is not True):
            ident, tgid = record.get("id"), record.get("tgid")
            tgid = tgid if type(tgid) is int else ident
            key = (record.get("kind"), ident)
            if key in gone:                     # the id's new task: counted from zero, its own process
                ended = gone.pop(key)
                self.retire(key, ended)
                if ended.tid == ended.tgid:
                    self.processes.pop(ended.tgid, None)
            values = self.counters(record, key) if type(ident) is (str if key[0] == "cgroup" else int) else None
            if values is None:
                log.malformed += 1
                continue
            if key[0] == "cgroup" and self.blocks is not None:
                self.blocks.add(ident, self.block(record))
            if pids is not None and ident not in pids and tgid not in pids:
                continue
            if fields is None:
                fields = frozenset(name for name in COUNTERS if record.get(name) is not None)
            task = self.tasks.get(key)
            if task is None:
                process = self.processes.get(tgid)
                if process is None:
                    process = self.processes[tgid] = Process(tgid)
                task = self.tasks[key] = RecordedTask(ident, tgid, process)
            task.prev = task.cur
            if values != ZERO:
                task.cur = values if task.cur is ZERO else tuple(map(operator.add, task.cur, values))
            elif record.get("accumulated") is not True or self.logged.get(key) == ZERO:
                self.lists_idle = True          # a task that never did anything was logged
            task.label(record)
            seen.add(key)
            if record.get("exited") is True:
                exited.append((key, task))
                gone[key] = task
        for key, task in list(self.tasks.items()):
            if key not in seen:
                if self.lists_idle:
                    self.retire(key, task)
                else:
                    task.prev = task.cur
        for key, task in gone.items():
            self.retire(key, task)
        self.processes = dict((t.tgid, t.process) for t in self.tasks.values())
        sample = RecordedSample()
        sample.tasks, sample.exited = list(self.tasks.values()), [task for _, task in exited]
        sample.fields = frozenset(COUNTERS) if fields is None else fields
        sample.vmstat = self.actual(summary)
        self.vmstat_total = add_up([self.vmstat_total, sample.vmstat])
        sample.vmstat_total = self.vmstat_total
        delayacct = summary.get("delayacct")
        sample.delayacct = delayacct if isinstance(delayacct, bool) else None
        sample.complete = summary.get("complete") is not False
        sample.source = text_or_none(summary.get("source")) or "log"
        sample.version = sample.cgroup_sampler = None
        return sample


class Replay(object):
    """The source of a replay: the recorded intervals that overlap the
    window [begin, end], in log order, as samples. Streams: memory holds
    one interval's lines and the tasks of the last REMEMBERED_RUNS runs."""

    def __init__(self, paths, begin=None, end=None, host=None, pids=None, cgroups=False, depth=None, uids=None,
                 grouping=False):
        self.paths, self.begin, self.end, self.host, self.pids = paths, begin, end, host, pids
        self.hosts, self.log = [], RecordedLog(paths)
        self.groups_left = False        # a -G log replayed without -G: its rows are groups
        # -G (or the screen's g key, grouping): a CgroupSampler per run groups
        # each interval's tasks; with -G a -G log's rows are one task per group
        self.grouping, self.depth, self.uids, self.block_notices = cgroups or grouping, depth, uids, []
        self.kinds = RECORDED_KINDS | set(["cgroup"]) if cgroups else RECORDED_KINDS

    def samples(self):
        """Every interval of the window; each call reads the logs again from the start."""
        self.log = log = RecordedLog(self.paths)
        begin, end, runs, latest = self.begin, self.end, {}, None
        self.block_notices = []
        for lines in recorded_intervals(log.records()):
            last = lines[-1]
            summary = last if last.get("type") == "summary" else {}
            rows = [r for r in lines if r.get("type") == "task" and r.get("kind") in self.kinds]
            if not self.groups_left and "cgroup" not in self.kinds:
                self.groups_left = any(r.get("kind") == "cgroup" for r in lines)
            host, seconds = last.get("host"), last.get("interval_seconds")
            wall = parse_time(last["time"]) if isinstance(last.get("time"), str) else None
            if wall is None or type(seconds) not in (int, float) or not 0 <= seconds < 1e9 \
                    or not isinstance(host, str):
                log.malformed += len(lines)
                continue
            if self.host is not None and host != self.host:
                continue
            if host not in self.hosts:
                self.hosts.append(host)
            key = (host, last.get("run"))
            run = runs.pop(key, None) or self.recorded_run()
            if latest is not None and latest is not run:
                latest.forget_idle()
            runs[key] = latest = run                    # most recently used last
            if len(runs) > REMEMBERED_RUNS:
                del runs[next(iter(runs))]
            interval = run.length(last, seconds)
            if (begin is not None and wall <= begin) or (end is not None and wall - interval >= end):
                run.skip(rows, summary)
                continue
            run.elapsed += interval
            sample = run.interval(rows, summary, self.pids, log)
            sample.interval, sample.elapsed, sample.wall, sample.start = interval, run.elapsed, wall, wall - interval
            sample.host, sample.run, sample.iteration = host, key[1], last.get("iteration")
            if run.groups is not None:
                sample = run.groups.grouped(sample)
                if run.groups.notice and run.groups.notice not in self.block_notices:
                    self.block_notices.append(run.groups.notice)
            yield sample

    def recorded_run(self):
        """A new run's state; with -G its own groups and block totals."""
        if not self.grouping:
            return RecordedRun()
        blocks = RecordedBlock()
        return RecordedRun(CgroupSampler(None, blocks, self.depth, self.uids, grouping=True), blocks)

    def several_hosts(self):
        """Whether the files hold more than one host, known before their
        intervals are read (a scan); False for stdin and with --host."""
        return self.host is None and len(RecordedLog(self.paths).hosts() or ()) > 1

    def notices(self):
        # the screen groups the intervals for its g key; what the groups lack is said for -G alone
        said = self.log.notices() + (self.block_notices if "cgroup" in self.kinds else [])
        if self.groups_left:
            said.append("the log's rows are cgroups (it was written with -G): they show with -G")
        if len(self.hosts) > 1:
            said.append("the log holds %d hosts (%s): each interval shows one host's rows; choose one with --host"
                        % (len(self.hosts), ", ".join(self.hosts)))
        return said


def frozen(sample):
    """A copy of a replayed sample that later intervals cannot change (they
    move the counters of the tasks it shares, and the groups they form)."""
    twins = {}            # id of a task or process: its copy

    def twin(task):
        process = twins.get(id(task.process))
        if process is None:
            process = twins[id(task.process)] = Process(task.tgid)
            process.exited, process.cgroup = task.process.exited, task.process.cgroup
        copy = twins[id(task)] = RecordedTask(task.tid, task.tgid, process)
        for name in ("uid", "comm", "base", "prev", "cur") + RecordedTask.__slots__:
            setattr(copy, name, getattr(task, name))
        return copy
    copy = RecordedSample()
    for name in Sample.__slots__ + RecordedSample.__slots__:
        setattr(copy, name, getattr(sample, name))
    copy.tasks, copy.exited = [twin(t) for t in sample.tasks], [twin(t) for t in sample.exited]
    if sample.cgroup_sampler is not None:
        copy.cgroup_sampler = sample.cgroup_sampler.frozen(twins)
    return copy


class IntervalBrowser(object):
    """Steps through a replay both ways: the last KEEP intervals are kept
    (frozen), older ones are reached by reading the log again."""
    KEEP = 64

    def __init__(self, replay):
        import collections
        self.replay, self.stream, self.pulled, self.position = replay, None, -1, -1
        self.kept = collections.deque(maxlen=self.KEEP)        # (index, sample)

    def restart(self):
        self.stream, self.pulled = self.replay.samples(), -1
        self.kept.clear()

    def at(self, index):
        """The interval with this index, None past the last one."""
        if self.stream is None or index < (self.kept[0][0] if self.kept else self.pulled + 1):
            self.restart()
        for kept_index, sample in self.kept:
            if kept_index == index:
                return sample
        while self.pulled < index:
            sample = next(self.stream, None)
            if sample is None:
                return None
            self.pulled += 1
            self.kept.append((self.pulled, frozen(sample)))
        return self.kept[-1][1]

    def step(self, delta):
        """The next (delta 1) or previous (-1) interval; None where there is none."""
        index = self.position + delta
        sample = self.at(index) if index >= 0 else None
        if sample is not None:
            self.position = index
        return sample

    def seek(self, wall):
        """The first interval (in log order) that ends at or after wall."""
        index = 0
        while True:
            sample = self.at(index)
            if sample is None:
                return None
            if sample.wall >= wall:
                self.position = index
                return sample
            index += 1


class WindowTotals(object):
    """--summary over a replay: the disk I/O of each task (or process) summed
    over the window and across runs, per host; the same id with the same
    command is one contender; with cgroups, the same cgroup path (block-layer
    counters summed too). Memory is bounded: past LIMIT contenders the
    smaller half is dropped (a month of logs meets many short-lived ones)."""
    LIMIT = 4096

    def __init__(self, processes, uids, count=10, cgroups=False):
        self.processes, self.uids, self.count, self.cgroups = processes, uids, count, cgroups
        # (host, id, command) -> Row, or (host, cgroup path) -> CgroupRow; host -> [start, end, last sample]
        self.rows, self.spans = {}, {}
        self.dropped = 0

    def add(self, sample):
        host = sample.host
        span = self.spans.get(host)
        if span is None:
            self.spans[host] = [sample.start, sample.wall, sample]
        else:
            span[0] = min(span[0], sample.start)
            if sample.wall >= span[1]:
                span[1:] = [sample.wall, sample]
        threads = not self.processes
        for row in build_rows(sample, self.processes, False, self.uids, "any", self.cgroups):
            if self.cgroups:
                self.add_group(host, row)
                continue
            key = (host, row.ident, recorded_command(row.task, threads))
            total = self.rows.get(key)
            if total is None:
                self.rows[key] = type(row)(row.ident, row.tgid, row.uid, row.task, row.values, 0.0, row.exited)
            else:
                total.values = tuple(map(operator.add, total.values, row.values))
                total.task, total.exited = row.task, row.exited
        if len(self.rows) > self.LIMIT:
            ranked = sorted(self.rows.items(), key=lambda item: disk_io_rank(item[1]), reverse=True)
            self.dropped += len(ranked) - self.LIMIT // 2
            self.rows = dict(ranked[:self.LIMIT // 2])

    def add_group(self, host, row):
        """A cgroup row into its group's total; the members, user and
        threads as the group's last row had them."""
        import copy
        total = self.rows.get((host, row.ident))
        if total is None:
            self.rows[(host, row.ident)] = copy.copy(row)
            return
        blocks = [block for block in (total.block, row.block) if block is not None]
        total.values, total.block = add_up([total.values, row.values]), add_up(blocks) if blocks else None
        total.thread_count, total.uid, total.members = row.thread_count, row.uid, row.members

    def notices(self):
        if not self.dropped:
            return []
        return ["--summary dropped %d of the smallest contenders on the way to bound memory: a task whose "
                "I/O came late in the window may rank lower than it should" % self.dropped]

    def top(self):
        """(host, top rows, a sample spanning the window) per host, hosts in order of appearance."""
        for host, (start, end, last) in self.spans.items():
            rows = sorted((r for key, r in self.rows.items() if key[0] == host), key=disk_io_rank, reverse=True)
            rows = [r for r in rows[:self.count] if disk_io_rank(r) != (0, 0)]
            last.elapsed = end - start
            for row in rows:
                row.span = last.elapsed
            yield host, rows, last


# ===========================================================================
# Views: rows to text (batch), JSON Lines
# ===========================================================================

def escape_text(text):
    """Untrusted text made safe for a terminal: control and unprintable
    characters, undecodable bytes and backslashes shown as escapes."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= code <= 0xDCFF:          # a byte that was not UTF-8
            out.append("\\x%02x" % (code - 0xDC00))
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x100:
            out.append("\\x%02x" % code)
        elif code < 0x10000:
            out.append("\\u%04x" % code)
        else:
            out.append("\\U%08x" % code)
    return "".join(out)


def real_text(text):
    """Untrusted text for JSON and CSV: as it is, except bytes that were not
    UTF-8, which become U+FFFD (JSON strings are Unicode)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def char_cells(ch):
    """Terminal cells of one printable character: East Asian wide and
    fullwidth take 2, combining marks 0."""
    if unicodedata.category(ch) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


NARROW_BELOW = "\u0300"     # every printable character before the first combining mark takes one cell


def text_cells(text):
    """Terminal cells a line of (escaped) text takes."""
    if not text or max(text) < NARROW_BELOW:
        return len(text)
    return sum(map(char_cells, text))


def cut_cells(text, width):
    """The longest start of text that fits in width cells."""
    if not text or max(text) < NARROW_BELOW:
        return text[:width]
    used = 0
    for index, ch in enumerate(text):
        used += char_cells(ch)
        if used > width:
            return text[:index]
    return text


def fit_cells(text, width):
    """text cut or padded with spaces to exactly width cells."""
    if not text or max(text) < NARROW_BELOW:
        return text[:width].ljust(width)
    text = cut_cells(text, width)
    return text + " " * (width - text_cells(text))


def scaled(value, step, units, whole=False):
    """(number text, unit): the value in the unit that keeps it under 1000,
    at most 5 characters ('99.99', '999.9'); whole: units as integers."""
    unit = 0
    while value >= 999.95 and unit < len(units) - 1:
        value /= step
        unit += 1
    if whole and unit == 0:
        return "%d" % value, units[0]
    return ("%.2f" if value < 99.995 else "%.1f") % value, units[unit]


def compact_size(size, kilobytes=False):
    """A size in at most 7 characters ('999.9 K', '12.34 M'); -k: in K."""
    if kilobytes:
        return "%.2f K" % (size / 1024.0)
    return "%s %s" % scaled(size, 1024.0, "BKMGTPE", whole=isinstance(size, int))


def compact_count(count):
    """A count in at most 6 characters, with k and M suffixes ('12.34k')."""
    return "%s%s" % scaled(count, 1000.0, ("", "k", "M", "G", "T", "P", "E"), whole=isinstance(count, int))


def percent(value):
    """A share in at most 8 characters ('100.0 %', '1234.5 %', '1.31M %':
    a process's or a group's threads add up)."""
    if value >= 99999.5:
        return compact_count(min(value, 999.9e18)) + " %"       # beyond: a replayed log's nonsense
    return ("%.2f %%" if value < 99.995 else "%.1f %%" if value < 9999.95 else "%.0f %%") % value


def disk_totals(rows, sample, accumulated):
    """(read, write) summed over the rows, and (read, write) the block layer did."""
    return (sum(r.values[READ_BYTES] for r in rows), sum(disk_write(r.values) for r in rows),
            sample.vmstat_total if accumulated else sample.vmstat)


class Column(object):
    """One column: key (for --columns and --sort), title, width (cells of
    its widest usual value), kind, and the counter it shows (field); short:
    the title where space is tight. kinds: id, text (filled per row), size
    (bytes), count, delay (ns as % of the span), cputime (us as % of the
    span), rss (KiB, a gauge), peak (ns, a gauge, in ms).
    delayacct: meaningful only with delay accounting on; since: the
    taskstats version that brought the field."""
    __slots__ = ("key", "title", "width", "kind", "field", "index", "derive", "delayacct", "since", "gauge",
                 "taskstats", "help", "short", "block")

    def __init__(self, key, title, width, kind, field=None, derive=None, delayacct=False, since=4, help="",
                 short=None, block=None):
        self.key, self.title, self.width, self.kind, self.field = key, title, width, kind, field
        self.short = short or title
        # where its counter (block: io.stat's name) stands in a cgroup row's block-layer counters
        self.block = None if block is None else BLOCK_COUNTERS.index(block)
        self.index = COUNTERS.index(field) if field else None
        self.derive, self.delayacct, self.since, self.help = derive, delayacct, since, help
        self.gauge = field in GAUGES
        self.taskstats = field is not None and field not in IO_COUNTERS

    def value(self, row):
        """The number this column shows for a row."""
        if self.block is not None:
            return (row.block or BLOCK_ZERO)[self.block]
        if self.derive is not None:
            return self.derive(row.values)
        if self.gauge:
            return max([task.cur[self.index] for task in row.members] or [0])
        return row.values[self.index]

    def known(self, row):
        """False where this row has no such data (block counters outside -G)."""
        return self.block is None or row.block is not None

    def available(self, sample):
        """False where the cell can only say n/a."""
        if self.delayacct and sample.delayacct is False:
            return False
        if sample.fields is not None:
            return self.field is None or self.field in sample.fields
        return not self.taskstats or (sample.version or 0) >= self.since


USER_CELLS = 10             # iotop-c's cut for user names


def delay_column(key, title, field, since, what, short=None):
    return Column(key, title, 8, "delay", field, delayacct=True, since=since,
                  help="%% of the time waiting for %s" % what, short=short)


def peak_column(key, title, what, short=None):
    return Column(key, title, 10, "peak", what + "_delay_max", delayacct=True, since=15,
                  help="longest single %s wait so far, ms (kernel 6.14+)" % what.replace("blkio", "block I/O"),
                  short=short)


COLUMNS = (
    Column("tid", "TID", 7, "id", help="thread id (process id with -P)"),
    Column("prio", "PRIO", 5, "text", help="I/O priority ('!': the process's threads differ)"),
    Column("user", "USER", USER_CELLS, "text", help="user name"),
    Column("disk_read", "DISK READ", 9, "size", "read_bytes", help="bytes read from storage", short="DISK RD"),
    Column("disk_write", "DISK WRITE", 9, "size", "write_bytes", derive=disk_write,
           help="bytes written to storage (write_bytes - cancelled_write_bytes)", short="DISK WR"),
    Column("swapin", "SWAPIN", 8, "delay", "swapin_delay_total", delayacct=True, help="% of the time swapping in"),
    Column("io", "IO", 8, "delay", "blkio_delay_total", delayacct=True, help="% of the time waiting for block I/O"),
    Column("buffer_read", "BUFFER READ", 9, "size", "read_char", help="bytes read at the VFS (rchar)",
           short="BUF RD"),
    Column("buffer_write", "BUFFER WRITE", 9, "size", "write_char", help="bytes written at the VFS (wchar)",
           short="BUF WR"),
    Column("read_syscalls", "READ SYSCALLS", 8, "count", "read_syscalls", help="read-family system calls",
           short="RD CALLS"),
    Column("write_syscalls", "WRITE SYSCALLS", 8, "count", "write_syscalls", help="write-family system calls",
           short="WR CALLS"),
    Column("blkio_count", "BLKIO CNT", 8, "count", "blkio_count", delayacct=True,
           help="waits for synchronous block I/O", short="BLKIO"),
    Column("command", "COMMAND", 0, "text", help="command line"),
    delay_column("cpu_delay", "CPU DELAY", "cpu_delay_total", 4, "a CPU while runnable", "CPU DLY"),
    Column("vcsw", "VCSW", 8, "count", "nvcsw", help="voluntary context switches"),
    Column("ivcsw", "IVCSW", 8, "count", "nivcsw", help="involuntary context switches"),
    Column("utime", "USER CPU", 8, "cputime", "ac_utime", help="% of the time on a CPU in user mode",
           short="USR CPU"),
    Column("stime", "SYS CPU", 8, "cputime", "ac_stime", help="% of the time on a CPU in the kernel"),
    Column("minflt", "MINFLT", 8, "count", "ac_minflt", help="minor page faults"),
    Column("majflt", "MAJFLT", 8, "count", "ac_majflt", help="major page faults (read from storage)"),
    Column("hiwater_rss", "HIWATER RSS", 8, "rss", "hiwater_rss", help="peak resident memory of the process",
           short="PEAK RSS"),
    delay_column("reclaim", "RECLAIM", "freepages_delay_total", 7, "memory reclaim"),
    delay_column("thrashing", "THRASHING", "thrashing_delay_total", 9, "thrashing pages", "THRASH"),
    delay_column("compact", "COMPACT", "compact_delay_total", 11, "memory compaction"),
    delay_column("wpcopy", "WPCOPY", "wpcopy_delay_total", 13, "write-protect copies"),
    delay_column("irq", "IRQ", "irq_delay_total", 14, "interrupts"),
    peak_column("cpu_max", "CPU MAX", "cpu"),
    peak_column("io_max", "IO MAX", "blkio"),
    peak_column("swapin_max", "SWAPIN MAX", "swapin", "SWAP MAX"),
    peak_column("reclaim_max", "RECLAIM MAX", "freepages", "RECL MAX"),
    peak_column("thrashing_max", "THRASH MAX", "thrashing", "THR MAX"),
    peak_column("compact_max", "COMPACT MAX", "compact", "COMP MAX"),
    peak_column("wpcopy_max", "WPCOPY MAX", "wpcopy", "WPC MAX"),
    peak_column("irq_max", "IRQ MAX", "irq"),
    Column("cgroup", "CGROUP", 20, "text", help="cgroup: systemd unit, container (runtime:id) or path"),
    Column("blk_read", "BLK READ", 11, "size", block="rbytes", help="bytes the cgroup read at the block layer (-G)"),
    Column("blk_write", "BLK WRITE", 11, "size", block="wbytes",
           help="bytes the cgroup wrote at the block layer, writeback included (-G)"),
    Column("blk_rios", "BLK RIOS", 10, "count", block="rios", help="block-layer read requests of the cgroup (-G)"),
    Column("blk_wios", "BLK WIOS", 10, "count", block="wios", help="block-layer write requests of the cgroup (-G)"),
)
COLUMN_BY_KEY = dict((c.key, c) for c in COLUMNS)
# iotop-c's -1 ... -9 and its keys 1-9: (digit, name in --hide-NAME/--show-NAME, this tool's column;
# None: no such column here)
HIDE_FLAGS = (("1", "pid", "tid"), ("2", "prio", "prio"), ("3", "user", "user"), ("4", "read", "disk_read"),
              ("5", "write", "disk_write"), ("6", "swapin", "swapin"), ("7", "io", "io"), ("8", "graph", None),
              ("9", "command", "command"))
DEFAULT_COLUMNS = COLUMNS[:13]
CGROUP_COLUMNS = DEFAULT_COLUMNS[:5] + (COLUMN_BY_KEY["blk_read"], COLUMN_BY_KEY["blk_write"]) + DEFAULT_COLUMNS[5:]
DEFAULT_SORT = "io"
# Columns whose counters move without any I/O: taskstats is asked for every thread.
ASK_EVERY_THREAD = frozenset(("vcsw", "ivcsw", "utime", "stime", "minflt", "majflt", "hiwater_rss"))


def column_for(name):
    """A column from a user's spelling: key, title, any case, - or _ or space."""
    wanted = name.strip().lower().replace("-", "_").replace(" ", "_")
    for column in COLUMNS:
        if wanted in (column.key, column.title.lower().replace(" ", "_")):
            return column
    if wanted == "pid":
        return COLUMN_BY_KEY["tid"]
    raise IotopError("unknown column: %s (see --columns help)" % name)


def columns_help():
    return "\n".join(["columns for --columns and --sort (default: %s):" % ",".join(c.key for c in DEFAULT_COLUMNS)]
                     + ["  %-15s %-15s %s" % (c.key, c.title, c.help) for c in COLUMNS])


# --- Layout: which columns a width shows, with what titles

MIN_COMMAND_WIDTH = 20      # COMMAND's least share from 80 columns up (a quarter of narrower screens)
# When space runs out, columns go from the end of this list; the sort column
# stays with TID; columns not listed go first.
KEEP_ORDER = ("tid", "command", "disk_read", "disk_write", "user", "buffer_read", "buffer_write", "io",
              "swapin", "prio", "read_syscalls", "write_syscalls", "blkio_count")


class Layout(object):
    """The columns a line shows: indexes into the settings' columns, their
    titles and widths in cells; command: COMMAND's cells (None: uncut)."""

    def __init__(self, columns, indexes, titles, widths, command):
        self.columns, self.indexes, self.titles, self.widths = columns, indexes, titles, widths
        self.command = command
        self.fitters = dict((i, self.fitter(i)) for i in indexes)

    def fitter(self, index):
        """A function putting a cell's text at its column's width."""
        column, width, command = self.columns[index], self.widths[index], self.command
        if column.key == "command":
            return (lambda text: text) if command is None else (lambda text: cut_cells(text, command))
        if column.kind != "text":
            return lambda text: text.rjust(width)
        fitted = {}                        # the few users and priorities, fitted once

        def fit(text):
            cell = fitted.get(text)
            if cell is None:
                cell = fitted[text] = fit_cells(text, width)
            return cell
        return fit

    def fit(self, index, text):
        """One cell's text at its column's width."""
        return self.fitters[index](text)

    def line(self, cells):
        """A row's line from the texts of all the settings' columns."""
        fitters = self.fitters
        return " ".join([fitters[i](cells[i]) for i in self.indexes])

    def header(self):
        return self.line(dict((i, self.titles[i]) for i in self.indexes))


def unavailable(columns, sample):
    """Keys of the columns that can only say n/a in this sample."""
    return frozenset(c.key for c in columns if not c.available(sample))


def only_delayacct_lacks(keys, sample):
    """True when delay accounting being off is all that keeps these columns at n/a."""
    return sample.source != "proc" and all(
        COLUMN_BY_KEY[key].delayacct and (sample.version or 0) >= COLUMN_BY_KEY[key].since for key in keys)


def listed_kind(settings):
    """The kind of rows the settings (options or ScreenState) list: 'thread',
    'process' (-P) or 'cgroup' (-G)."""
    return "cgroup" if getattr(settings, "cgroups", False) else "process" if settings.processes else "thread"


ID_TITLES = {"thread": "TID", "process": "PID", "cgroup": "TASKS"}     # the tid column's, per kind of row


def column_title(column, settings, short):
    """A column's title; the sort column marked > (< reversed)."""
    title = column.short if short else column.title
    if column.key == "tid":
        title = ID_TITLES[listed_kind(settings)]
    if column is settings.sort_column:
        title += "<" if settings.reverse else ">"
    return title


def fitting_columns(settings, width, hidden=()):
    """The Layout of settings.columns (minus the keys in hidden) for a line
    of width cells (None: unlimited, COMMAND uncut). Full titles when all
    fit; else short titles, and columns dropped in KEEP_ORDER's order until
    COMMAND keeps its share."""
    columns = settings.columns
    shown = [i for i, c in enumerate(columns) if c.key not in hidden]

    def layout(indexes, short, command):
        titles = dict((i, column_title(columns[i], settings, short)) for i in indexes)
        widths = dict((i, max(columns[i].width, text_cells(titles[i]) + (columns[i].key != "command")))
                      for i in indexes)
        return Layout(columns, indexes, titles, widths, command)
    if width is None:
        return layout(shown, False, None)
    least = 0
    if any(columns[i].key == "command" for i in shown):
        least = MIN_COMMAND_WIDTH if width >= 80 else width // 4

    def room(candidate):
        """Cells left for COMMAND."""
        others = [w for i, w in candidate.widths.items() if columns[i].key != "command"]
        return width - sum(others) - len(candidate.indexes) + 1
    for short in (False, True):
        candidate = layout(shown, short, None)
        if room(candidate) >= least:
            break
    else:
        short = True
        def rank(index):
            key = columns[index].key
            if key == "tid":
                return -2
            if columns[index] is settings.sort_column:
                return -1
            return KEEP_ORDER.index(key) if key in KEEP_ORDER else len(KEEP_ORDER) + index
        kept = sorted(shown, key=rank)
        while len(kept) > 1 and room(layout(kept, True, None)) < least:
            kept.pop()
        candidate = layout(sorted(kept), True, None)
    return layout(candidate.indexes, short, max(0, room(candidate)) if least else None)


# Seconds an idle row's io priority may come from the last ioprio_get of its
# thread: a priority set from outside shows within this.
PRIO_CACHE = 5.0


class Labeller(object):
    """Names rows: user, io priority, command; command lines are read once
    per process per refresh, and only for rows that are shown; io priorities
    of idle rows are asked again every PRIO_CACHE seconds."""

    def __init__(self, ioprio, proc="/proc"):
        self.ioprio, self.proc = ioprio, proc
        self.full_command = True
        self.commands, self.argvs, self.argv_texts, self.users, self.cgroups = {}, {}, {}, {}, {}
        self.starts = {}            # tgid -> its start time now (lives), per refresh
        self.prios, self.prios_until, self.prio_texts = {}, 0.0, {}

    def new_refresh(self):
        self.commands, self.argvs, self.argv_texts, self.starts = {}, {}, {}, {}
        now = time.monotonic()
        if now >= self.prios_until:
            self.prios, self.prios_until = {}, now + PRIO_CACHE

    def user(self, row, escape=escape_text):
        """The row's user name; escape as for command()."""
        key = (row.uid, escape)
        name = self.users.get(key)
        if name is None:
            name = self.users[key] = "?" if row.uid is None else escape(user_name(row.uid))
        return name

    def prio(self, row):
        """The leader's PRIO; for a process whose live threads differ,
        marked '!' as iotop-c does."""
        task = row.live_task()
        if task is None:
            return "?"
        text = self.prio_of(task, row.values != ZERO)
        if len(row.members) > 1:
            # each member asked again only if it moved itself: a busy process
            # of 10,000 idle threads is not 10,000 syscalls a refresh
            others = set(self.prio_of(t, t.cur != t.prev) for t in row.members if t is not task)
            if others - set((text, "?")):
                text += "!"
        return text

    def prio_of(self, task, busy):
        """A thread's PRIO text: its io priority asked again when it did
        I/O, else at most every PRIO_CACHE seconds."""
        if busy or task not in self.prios:
            self.prios[task] = self.ioprio.get(task.tid)
        key = (self.prios[task], task.nice, task.policy)
        text = self.prio_texts.get(key)
        if text is None:                    # a few dozen of them on a host
            text = self.prio_texts[key] = format_ioprio(*key)
        return text

    def lives(self, process):
        """Whether the process still has its PID (its start time is known and
        the same), read once per refresh."""
        tgid = process.tgid
        if tgid not in self.starts:
            now = read_task_start(tgid, tgid, self.proc)
            self.starts[tgid] = None if now is None else now[0]
        return process.start is not None and self.starts[tgid] == process.start

    def arguments(self, tgid):
        """A process's arguments as read (None: kernel thread or gone), once per refresh."""
        if tgid not in self.argvs:
            self.argvs[tgid] = read_argv(tgid, self.proc)
        return self.argvs[tgid]

    def argv(self, row):
        """The arguments as real text; None where they are not the row's
        (a kernel thread, a task that ended: its PID may be reused; a cgroup)."""
        if row.live_task() is None:
            return None
        tgid = row.tgid
        if tgid not in self.argv_texts:
            argv = self.arguments(tgid)
            self.argv_texts[tgid] = argv if argv is None else [real_text(arg) for arg in argv]
        return self.argv_texts[tgid]

    def command(self, row, leader_comm, threads, escape=escape_text):
        """iotop's COMMAND: the command line ([name] for kernel threads) and,
        for a thread whose name differs from its process's, that name.
        Without full_command: just the name. escape: escape_text for a
        terminal, real_text for JSON and CSV."""
        if row.name is not None:
            return escape(row.name)
        task = row.task
        if not self.full_command:
            return escape(task.comm)
        if row.exited and not self.lives(task.process):
            return escape("[%s]" % task.comm)     # its PID is another process's now
        key = (task.tgid, escape)
        text = self.commands.get(key)
        if text is None:
            argv = self.arguments(task.tgid)
            text = self.commands[key] = escape(" ".join(argv or ()) or "[%s]" % (leader_comm or task.comm))
        if threads and task.tid != task.tgid and leader_comm and task.comm != leader_comm:
            text += " [%s]" % escape(task.comm)
        return text

    def cgroup(self, row):
        path = row.cgroup_path()
        name = self.cgroups.get(path)
        if name is None:
            if len(self.cgroups) > 4096:        # groups come and go: stay bounded
                self.cgroups.clear()
            name = self.cgroups[path] = escape_text(cgroup_name(path))
        return name


class RecordedLabeller(object):
    """Names replayed rows as the log recorded them, escaped for the terminal."""

    def __init__(self):
        self.full_command = True

    def new_refresh(self):
        pass

    def user(self, row, escape=escape_text):
        """A cgroup row's: its members' one user, as live."""
        users = set(t.user for t in row.label_tasks())
        user = users.pop() if len(users) == 1 else None
        return "?" if user is None else escape(user)

    def prio(self, row):
        task = row.live_task()
        return "?" if task is None or task.prio is None else escape_text(task.prio)

    def argv(self, row):
        task = row.live_task()
        return None if task is None else task.argv

    def cgroup(self, row):
        return escape_text(cgroup_name(row.cgroup_path() or ""))

    def command(self, row, leader_comm, threads, escape=escape_text):
        """escape: escape_text for a terminal; the views that re-emit records pass their own."""
        return escape(recorded_command(row.task, threads) if row.name is None else row.name)


def sort_rows(rows, column, reverse=False, labels=None):
    """Numbers largest first, text A to Z; reverse flips. Ties: disk, then
    VFS bytes, then id, so the order is stable from refresh to refresh."""
    if column.kind == "id":
        rows.sort(key=lambda r: r.number(), reverse=reverse)
        return rows
    if column.kind == "text":
        rows.sort(key=lambda r: (labels(column.key, r), r.number()), reverse=reverse)
        return rows
    value = column.value

    def rank(row):
        values = row.values
        return value(row), values[READ_BYTES] + values[WRITE_BYTES], values[READ_CHAR] + values[WRITE_CHAR]
    if column.gauge or column.block is not None or all(r.values is not ZERO for r in rows):
        rows.sort(key=lambda r: rank(r) + (-r.number(),), reverse=not reverse)
        return rows
    # Idle rows (sharing ZERO: most of them) rank alike but for their
    # numbers, so they are ordered by number alone (they come in order:
    # linear), with any other row of that rank; only the rest take the full
    # key. Every sort is stable, as one sort on the full key would be.
    ranks = dict((id(r), rank(r)) for r in rows if r.values is not ZERO)
    still = rank(next(r for r in rows if r.values is ZERO))
    level = [r for r in rows if r.values is ZERO or ranks[id(r)] == still]
    level.sort(key=operator.methodcaller("number"), reverse=reverse)
    above = [r for r in rows if r.values is not ZERO and ranks[id(r)] > still]
    below = [r for r in rows if r.values is not ZERO and ranks[id(r)] < still]
    for part in (above, below):
        part.sort(key=lambda r: ranks[id(r)] + (-r.number(),), reverse=not reverse)
    rows[:] = below + level + above if reverse else above + level + below
    return rows


class TextView(object):
    """iotop's batch screen with the extended columns (options.columns).
    width: the line's cells (the terminal's), None for uncut lines."""

    def __init__(self, options, labeller, out, width=None):
        self.options, self.labeller, self.out, self.width = options, labeller, out, width
        self.iteration = 0
        self.layout_key = self.layout = None
        self.idle_key = self.idle_template = None
        self.texts = {"tid": lambda row, comms: "%d" % row.number(),
                      "prio": lambda row, comms: labeller.prio(row),
                      "user": lambda row, comms: labeller.user(row),    # the layout cuts at USER_CELLS
                      "cgroup": lambda row, comms: labeller.cgroup(row),
                      "command": self.command}
        # per row only the text cells change for idle rows (unless a gauge
        # or a cgroup's block counters are shown)
        self.idle_rows_alike = not any(c.gauge or c.block is not None for c in options.columns)

    def size(self, value, span):
        if self.options.accumulated:
            return compact_size(value, self.options.kilobytes)
        return compact_size(value / span if span else 0.0, self.options.kilobytes) + "/s"

    def count(self, value, span):
        if self.options.accumulated:
            return compact_count(value)
        return compact_count(value / span if span else 0.0) + "/s"

    def number(self, column, row, sample):
        """The text of a counter cell."""
        if not column.available(sample) or not column.known(row):
            return "n/a"
        value, span, kind = column.value(row), row.span, column.kind
        if kind == "size":
            return self.size(value, span)
        if kind == "count":
            return self.count(value, span)
        if kind == "delay":                         # ns over seconds, in %
            return percent(value / (span * 1e7) if span else 0.0)
        if kind == "cputime":                       # us over seconds, in %
            return percent(value / (span * 1e4) if span else 0.0)
        if kind == "rss":
            return compact_size(value * 1024, self.options.kilobytes)
        if value < 1e10:                            # peak: ns
            return "%.2f ms" % (value / 1e6)
        return "%.1f s" % (value / 1e9)

    def set_layout(self, sample):
        """The layout for this sample's columns: on a terminal, columns that
        can only say n/a get no space."""
        opts = self.options
        key = (sample.delayacct, sample.version, opts.sort_column, opts.reverse, listed_kind(opts))
        if key != self.layout_key:
            hidden = () if self.width is None else unavailable(opts.columns, sample)
            self.layout_key, self.layout = key, fitting_columns(opts, self.width, hidden)
        return self.layout

    def header(self):
        return self.layout.header()

    def command(self, row, leader_comms):
        text = self.labeller.command(row, leader_comms.get(row.tgid), not self.options.processes)
        return text + " (exited)" if row.exited else text

    def row_cells(self, row, sample, leader_comms):
        """Every column's text for one row."""
        texts = self.texts
        return [texts[c.key](row, leader_comms) if c.key in texts else self.number(c, row, sample)
                for c in self.options.columns]

    def idle_line(self, sample):
        """A format for rows whose counters did not move: the number cells
        are the same for all of them, only the text cells are filled in."""
        opts, layout = self.options, self.layout
        key = (sample.delayacct, sample.version, sample.source, opts.accumulated, layout)
        if key != self.idle_key:
            idle = Row(0, 0, None, None, ZERO, 1.0)
            self.idle_key = key
            columns = opts.columns
            self.idle_template = (" ".join(
                "%s" if columns[i].key in self.texts else layout.fit(i, self.number(columns[i], idle, sample))
                .replace("%", "%%") for i in layout.indexes),
                [(layout.fitters[i], self.texts[columns[i].key]) for i in layout.indexes
                 if columns[i].key in self.texts])
        return self.idle_template

    def cells(self, row, sample, leader_comms):
        """The line of one row."""
        if row.values == ZERO and self.idle_rows_alike:
            template, texts = self.idle_line(sample)
            return template % tuple([fit(text(row, leader_comms)) for fit, text in texts])
        return self.layout.line(self.row_cells(row, sample, leader_comms))

    def summary(self, rows, sample):
        opts = self.options
        span = sample.elapsed if opts.accumulated else sample.interval
        read, write, actual = disk_totals(rows, sample, opts.accumulated)
        actual_read, actual_write = actual
        lines = ["Total DISK READ: %12s | Total DISK WRITE: %12s"
                 % (self.size(read, span), self.size(write, span)),
                 "Actual DISK READ: %11s | Actual DISK WRITE: %11s"
                 % (self.size(actual_read, span), self.size(actual_write, span))]
        if listed_kind(opts) == "cgroup":
            listed = listed_block_io(rows)
            lines.append("Groups BLK READ: %12s %s | Groups BLK WRITE: %12s %s of actual" % tuple(
                text for done, total in zip(listed, actual)
                for text in (self.size(done, span), "(%3.0f%%)" % (100.0 * done / total) if total else "(  -%)")))
        return lines

    def render(self, rows, sample, leader_comms):
        opts = self.options
        self.set_layout(sample)
        lines = []
        if opts.quiet < 3:
            lines.extend(self.summary(rows, sample))
        if opts.quiet == 0 or (opts.quiet == 1 and self.iteration == 0):
            lines.append(self.header())
        stamp = time.strftime("%H:%M:%S ", time.localtime(sample.wall)) if opts.time else ""
        self.iteration += 1
        cells = self.cells
        self.out.write_lines(itertools.chain(lines, (cells(row, sample, leader_comms) for row in rows)), stamp)


TOP_TITLES = {"thread": "threads", "process": "processes", "cgroup": "cgroups"}


class TopTextView(TextView):
    """--summary in text: the run's top rows, as totals."""

    def __init__(self, options, labeller, out, width=None):
        import copy
        settings = copy.copy(options)
        settings.accumulated = True
        TextView.__init__(self, settings, labeller, out, width)

    def render_top(self, rows, sample, leader_comms):
        self.set_layout(sample)
        title = "Top %d %s by disk I/O over the whole run (%.1f s):" % (
            len(rows), TOP_TITLES[listed_kind(self.options)], sample.elapsed)
        lines = [title, self.header()] + [self.cells(row, sample, leader_comms) for row in rows]
        self.out.write_lines(iter(lines))


def iso_time(wall):
    """RFC 3339, local time with microseconds and the UTC offset."""
    import datetime
    offset = time.localtime(wall).tm_gmtoff
    if offset % 60:         # TZ=XXX-1:00:30: RFC 3339 (and Python 3.6) offsets are whole minutes
        offset = 0
    zone = datetime.timezone(datetime.timedelta(seconds=offset))
    return datetime.datetime.fromtimestamp(wall, zone).isoformat(timespec="microseconds")


def complain(text):
    """A line on stderr; a closed or full stderr is no reason to change how
    the run ends (its exit status)."""
    try:
        sys.stderr.write("%s: %s\n" % (PROG, text))
        sys.stderr.flush()
    except (AttributeError, OSError):       # AttributeError: stderr closed at start (None)
        pass


class Notices(object):
    """Informational notices (not errors): a line on stderr each, none with
    -q; with a machine-readable output (into_output) they wait in pending
    for the views, which put them into the output instead."""

    def __init__(self, quiet=False, into_output=False):
        self.quiet, self.into_output = quiet, into_output
        self.pending, self.said = [], set()

    def say(self, text, once=False):
        """once: not again if this text was said before."""
        if once:
            if text in self.said:
                return
            self.said.add(text)
        if self.into_output:
            self.pending.append(text)
        elif not self.quiet:
            complain(text)

    def delivered(self):
        """Every view has written this iteration's notices."""
        self.pending = []


# JSON Lines schema (README "JSON Lines schema"): bump on any change a reader
# must know about; adding keys is not one.
SCHEMA_VERSION = 1
RECORD_HEAD = ("schema", "type", "host", "run", "iteration", "time", "interval_seconds")
IO_VALUES, DELAY_VALUES = (operator.itemgetter(*map(COUNTERS.index, names)) for names in (IO_COUNTERS, DELAY_COUNTERS))
RECORD_ID_KEYS = {"thread": "tid", "process": "pid", "cgroup": None}     # a row's id again under this key
SUMMARY_FIELDS = ("source", "accumulated", "total_read_bytes", "total_write_bytes", "actual_read_bytes",
                  "actual_write_bytes", "delayacct", "complete", "notices")


class RecordView(object):
    """Rows as records of the JSON Lines schema: what --json and --csv print."""

    def __init__(self, options, labeller, out):
        self.options, self.labeller, self.out = options, labeller, out
        self.host, self.run = real_text(os.uname().nodename), os.urandom(8).hex()
        self.iteration = 0
        self.fields = dict((kind, self.row_fields(kind)) for kind in RECORD_ID_KEYS)

    def extra_columns(self):
        """Chosen columns beyond the base counters: their kernel fields join the records."""
        return [c for c in self.options.columns if c.field and c.field not in RECORD_COUNTERS]

    def row_fields(self, kind):
        """Keys of a task or top record of a kind of row: a thread's or a
        process's id also under tid or pid; a cgroup's block-layer counters."""
        id_key = RECORD_ID_KEYS[kind]
        return (list(RECORD_HEAD) + ["kind", "id"] + ([id_key] if id_key else [])
                + ["tgid", "uid", "user", "prio", "command", "argv", "cgroup", "accumulated"]
                + list(RECORD_COUNTERS) + [c.field for c in self.extra_columns()]
                + ["exited", "io_pct", "swapin_pct", "members"]
                + list(BLOCK_COUNTERS if kind == "cgroup" else ()))

    def head(self, kind, sample, accumulated):
        span = sample.elapsed if accumulated else sample.interval
        return [SCHEMA_VERSION, kind, sample.host or self.host, sample.run or self.run,
                sample.iteration or self.iteration, iso_time(sample.wall), span]

    def records(self, rows, sample, leader_comms, kind="task"):
        """One dict per row (keys in row_fields() order); kind 'top' is --summary."""
        opts, labeller = self.options, self.labeller
        accumulated = kind == "top" or opts.accumulated
        head = self.head(kind, sample, accumulated)
        extra = self.extra_columns()
        delays_known = sample.delayacct is not False
        unknown_delays, unknown_block = [None] * len(DELAY_COUNTERS), [None] * len(BLOCK_COUNTERS)
        for row in rows:
            names = self.fields[row.kind]
            span_ns = row.span * 1e9
            values = row.values
            delays = list(DELAY_VALUES(values)) if delays_known else unknown_delays
            pct = [round(100.0 * values[COUNTERS.index(name)] / span_ns, 2) if delays_known and span_ns else None
                   for name in ("blkio_delay_total", "swapin_delay_total")]
            command = labeller.command(row, leader_comms.get(row.tgid), not opts.processes, real_text)
            path = row.cgroup_path()
            cgroup = real_text(path) if path else None       # a directory name is any bytes
            # a cgroup's id is its path ("": tasks that ended), a thread's or process's twice (id, tid or pid)
            ids = [real_text(row.ident)] if row.kind == "cgroup" else [row.ident, row.ident]
            yield dict(zip(names, head + [row.kind] + ids + [
                row.tgid, row.uid, labeller.user(row, real_text), labeller.prio(row), command, labeller.argv(row),
                cgroup, accumulated] + list(IO_VALUES(values)) + delays
                + [c.value(row) if c.available(sample) else None for c in extra]
                + [row.exited] + pct + [row.threads()]
                + (list(row.block or unknown_block) if row.kind == "cgroup" else [])))

    def summary_record(self, all_rows, sample):
        accumulated = self.options.accumulated
        read, write, (actual_read, actual_write) = disk_totals(all_rows, sample, accumulated)
        record = dict(zip(RECORD_HEAD + SUMMARY_FIELDS,
                          self.head("summary", sample, accumulated)
                          + [sample.source, accumulated, read, write, actual_read, actual_write, sample.delayacct,
                             sample.complete, list(self.options.notices.pending)]))
        if listed_kind(self.options) == "cgroup":       # the block I/O of the listed groups, each byte once
            record["groups_read_bytes"], record["groups_write_bytes"] = listed_block_io(all_rows)
        return record

    def iteration_records(self, rows, sample, leader_comms):
        """An iteration: its rows, then its summary."""
        self.iteration += 1
        return itertools.chain(self.records(rows, sample, leader_comms), [self.summary_record(rows, sample)])


class JsonView(RecordView):
    """JSON Lines: one object per row and one summary per iteration."""

    def render(self, rows, sample, leader_comms):
        self.out.write_lines(map(json.dumps, self.iteration_records(rows, sample, leader_comms)))

    def render_top(self, rows, sample, leader_comms):
        self.out.write_lines(map(json.dumps, self.records(rows, sample, leader_comms, "top")))


def csv_cell(value):
    """A record's value as a CSV cell: empty for null, true/false only for
    booleans (0 and 1 stay numbers), lists as JSON text."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value)
    return value


class CsvView(RecordView):
    """CSV (RFC 4180): a header fixed for the run (the same in thread and
    process mode), then the records of each iteration, summary included."""

    def __init__(self, options, labeller, out):
        RecordView.__init__(self, options, labeller, out)
        self.started = False
        names = self.row_fields(listed_kind(options))
        names[names.index("id") + 1:names.index("tgid")] = ["tid", "pid"]
        self.names = names + [n for n in SUMMARY_FIELDS if n not in names]
        # cells are real text in UTF-8, whatever the locale (a C locale's
        # escapes would make them inexact); a terminal gets them escaped
        self.on_terminal = out.isatty()
        self.encoding = None if self.on_terminal else "utf-8"

    def lines(self, records):
        import csv
        import io
        names = self.names
        if not self.started:
            self.started = True
            yield ",".join(names)
        buffer = io.StringIO()
        # the writer quotes a cell holding a character of its line terminator
        # (before 3.12 only those): with CR LF a command's CR or LF is quoted
        writer = csv.writer(buffer, lineterminator="\r\n")
        for record in records:
            buffer.seek(0)
            buffer.truncate()
            cells = [csv_cell(record.get(n)) for n in names]
            if self.on_terminal:
                cells = [escape_text(c) if isinstance(c, str) else c for c in cells]
            writer.writerow(cells)
            yield buffer.getvalue()[:-2]

    def render(self, rows, sample, leader_comms):
        self.out.write_lines(self.lines(self.iteration_records(rows, sample, leader_comms)), end="\r\n",
                             encoding=self.encoding)

    def render_top(self, rows, sample, leader_comms):
        self.out.write_lines(self.lines(self.records(rows, sample, leader_comms, "top")), end="\r\n",
                             encoding=self.encoding)


SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SignalsHeld(object):
    """A block during which the signals that end a run wait: output is
    written whole, never a partial line or file when the tool is killed."""

    def __enter__(self):
        self.held = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)

    def __exit__(self, *exc_info):
        signal.pthread_sigmask(signal.SIG_SETMASK, self.held)


def replace_file(path, data):
    """Make bytes the content of path atomically: a new file in the same
    directory (mkstemp: O_EXCL, no symlink followed), mode 0644, synced, then
    renamed over path; rename() replaces a symlink planted at path, never
    what it points to."""
    import tempfile
    temp = None
    with SignalsHeld():
        try:
            fd, temp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp",
                                        dir=os.path.dirname(os.path.abspath(path)))
            try:
                os.fchmod(fd, 0o644)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, path)
        except OSError as err:
            if temp is not None:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
            raise IotopError("cannot write %s: %s" % (path, err.strerror or err))


# --prometheus: gauges of the interval's rates per group, base units in the
# names: (metric, the column whose value is summed, factor to the base unit, help).
PROMETHEUS_RATES = (
    ("iotop_ext_disk_read_bytes_per_second", "disk_read", 1, "Bytes read from storage (read_bytes)"),
    ("iotop_ext_disk_write_bytes_per_second", "disk_write", 1,
     "Bytes written to storage (write_bytes - cancelled_write_bytes)"),
    ("iotop_ext_vfs_read_bytes_per_second", "buffer_read", 1, "Bytes read at the VFS (read_char)"),
    ("iotop_ext_vfs_write_bytes_per_second", "buffer_write", 1, "Bytes written at the VFS (write_char)"),
    ("iotop_ext_read_syscalls_per_second", "read_syscalls", 1, "Read-family system calls"),
    ("iotop_ext_write_syscalls_per_second", "write_syscalls", 1, "Write-family system calls"),
    ("iotop_ext_blkio_waits_per_second", "blkio_count", 1, "Waits for synchronous block I/O"),
    ("iotop_ext_blkio_delay_seconds_per_second", "io", 1e-9, "Seconds spent waiting for synchronous block I/O"),
    ("iotop_ext_swapin_delay_seconds_per_second", "swapin", 1e-9, "Seconds spent waiting for swap-in"),
)
PROMETHEUS_LABELS = ("command", "user", "pid")
# where the disk and the VFS bytes stand among the rates
PROMETHEUS_DISK, PROMETHEUS_VFS = (operator.itemgetter(*map([key for _, key, _, _ in PROMETHEUS_RATES].index, keys))
                                   for keys in (("disk_read", "disk_write"), ("buffer_read", "buffer_write")))
PROMETHEUS_BY, PROMETHEUS_TOP = "command,user", 20          # defaults
# The labels of the series that sums the groups past the top N: a value no
# real label has (a process name has 15 characters at most; a cgroup's name
# starts with '/', ends in a unit type or holds ':'; no login name has spaces).
PROMETHEUS_OTHER = "(all other groups)"


def label_text(text):
    """A label value in the text format: shown as on a terminal (control
    characters, bad bytes escaped), then backslash and quote escaped."""
    return escape_text(text).replace("\\", "\\\\").replace('"', '\\"')


def prometheus_rank(item):
    """A group's (label values, rates) ranked: disk bytes, then VFS bytes, then its labels."""
    labels, sums = item
    return sum(PROMETHEUS_DISK(sums)), sum(PROMETHEUS_VFS(sums)), labels


def metric_number(value):
    return repr(value) if isinstance(value, float) else "%d" % value


class PrometheusView(object):
    """--prometheus FILE: after each iteration the Prometheus text format,
    replaced atomically, for node_exporter's textfile collector. Rows are
    summed per group (options.prometheus_by: process name, user, pid); the
    top N groups by disk I/O keep their labels, the rest become one series
    labelled PROMETHEUS_OTHER. Notices of the iteration are '# ' comments."""

    def __init__(self, options, labeller):
        self.options, self.path = options, options.prometheus
        self.columns = [COLUMN_BY_KEY[key] for _, key, _, _ in PROMETHEUS_RATES]
        labels = {"command": lambda row, comms: (row.name if row.name is not None       # a -G row: its group
                                                 else comms.get(row.tgid) or row.task.comm),
                  "user": lambda row, comms: labeller.user(row, str),    # escaped once, as a label
                  "pid": lambda row, comms: str(row.tgid)}
        self.label_names = options.prometheus_by
        self.labels = [labels[name] for name in self.label_names]

    def groups(self, rows, leader_comms):
        """Rows summed per label values: [(label values, column sums)] of the
        top N groups and the rest (PROMETHEUS_OTHER), sorted; and how many groups there were."""
        columns, labels = self.columns, self.labels
        zero = [0] * len(columns)
        sums = {}
        for row in rows:
            key = tuple([label(row, leader_comms) for label in labels])
            values = sums.setdefault(key, zero)
            if row.values != ZERO:
                sums[key] = [total + column.value(row) for total, column in zip(values, columns)]
        ranked = sorted(sums.items(), key=prometheus_rank, reverse=True)
        top = dict(ranked[:self.options.prometheus_top])
        other = (PROMETHEUS_OTHER,) * len(labels)
        for key, values in ranked[self.options.prometheus_top:]:
            top[other] = [a + b for a, b in zip(top.get(other, zero), values)]
        return sorted(top.items()), len(sums)

    def text(self, rows, sample, leader_comms):
        span = sample.elapsed if self.options.accumulated else sample.interval
        groups, seen = self.groups(rows, leader_comms)
        lines = ["# %s" % escape_text(notice) for notice in self.options.notices.pending]
        series = [(",".join('%s="%s"' % (name, label_text(value)) for name, value in zip(self.label_names, key)),
                   values) for key, values in groups]
        for index, (name, _, factor, what) in enumerate(PROMETHEUS_RATES):
            if not self.columns[index].available(sample):
                continue                    # delay accounting off: unknown, not 0
            lines.append("# HELP %s %s per second over the interval, summed per group." % (name, what))
            lines.append("# TYPE %s gauge" % name)
            lines.extend("%s{%s} %s" % (name, labels, metric_number(values[index] * factor / span if span else 0.0))
                         for labels, values in series)
        for name, what, value in (
                ("iotop_ext_interval_seconds", "Seconds the rates cover.", span),
                ("iotop_ext_tasks_seen", "Threads watched at the end of the interval.", len(sample.tasks)),
                ("iotop_ext_exited_tasks", "Threads that ended in the interval, counted from exit records.",
                 len(sample.exited)),
                ("iotop_ext_complete", "1, or 0 when the kernel dropped exit records in the interval.",
                 int(sample.complete)),
                ("iotop_ext_delay_accounting", "1 when delay accounting (kernel.task_delayacct) is on.",
                 int(bool(sample.delayacct))),
                ("iotop_ext_groups", "Label combinations seen; those past the top N are summed in one series.", seen),
                ("iotop_ext_sample_timestamp_seconds", "Unix time of the end of the interval.", sample.wall)):
            lines.extend(["# HELP %s %s" % (name, what), "# TYPE %s gauge" % name, "%s %s" % (name, metric_number(value))])
        return "\n".join(lines) + "\n"

    def render(self, rows, sample, leader_comms):
        replace_file(self.path, self.text(rows, sample, leader_comms).encode("utf-8"))


# --- Interactive: a pure screen function, a pure key map, a thin curses shell

HELP_LINES = (
    "iotop_ext keys",
    "",
    "  q            quit",
    "  < > or <- -> sort by the previous / next column",
    "  r            reverse the sort order",
    "  o            only rows doing I/O: disk (as iotop), any (VFS too), off",
    "  p            processes / threads",
    "  g            threads -> processes -> cgroups",
    "  a            totals since start / rates",
    "  c            full command line / name only",
    "  1-9          hide / show the 1st-9th column",
    "  f            filter by user or PID",
    "  /            filter COMMAND by a regular expression",
    "  Esc          clear the filters",
    "  i            set a thread's (with -P: a process's) I/O priority (ionice)",
    "  d            delay accounting on / off (restored on exit)",
    "  up down PgUp PgDn Home End   scroll",
    "  t T b        --replay: next / previous recorded interval, jump to a time",
    "  ? or h       this help (any key closes it)",
    "  any other    refresh now",
)


class ScreenState(object):
    """What the interactive user chose; read by the views like options.
    hidden: keys of the columns hidden (-1 ... -9, keys 1-9); uids, pids,
    regex: the row filters (f, /)."""

    def __init__(self, options):
        self.sort_column, self.reverse = options.sort_column, options.reverse
        self.only, self.processes, self.accumulated = options.only, options.processes, options.accumulated
        self.cgroups = options.cgroups
        self.kilobytes, self.hide_exited = options.kilobytes, options.hide_exited
        self.full_command, self.help, self.offset, self.hint = options.full_command, False, 0, ""
        # the columns -1 ... -9 hid stay here, hidden: keys 1-9 show them again
        self.columns, self.hidden = options.chosen_columns, frozenset(options.hidden_columns)
        self.base_uids = options.uids
        self.uids, self.pids, self.regex, self.who = options.uids, None, options.regex, ""


def apply_key(state, key, total, page):
    """Change the state for a key name ('q', 'left', 'pgdn', 'esc', ...).
    Returns 'quit', 'ionice', 'delayacct', 'filter', 'search' or 'sample'
    (take a new sample now), else None."""
    if state.help:
        state.help = False
        return None
    state.hint = ""
    if key == "q":
        return "quit"
    moves = {"left": -1, "<": -1, "right": 1, ">": 1}
    scroll = {"up": -1, "down": 1, "pgup": -page, "pgdn": page, "home": -total, "end": total}
    actions = {"i": "ionice", "d": "delayacct", "f": "filter", "/": "search"}
    if key in moves:
        columns = state.columns
        index = columns.index(state.sort_column) + moves[key] if state.sort_column in columns else 0
        state.sort_column = columns[index % len(columns)]
    elif key in scroll:
        state.offset = max(0, min(state.offset + scroll[key], total - page))
    elif key in ("?", "h"):
        state.help = True
    elif key in actions:
        return actions[key]
    elif key == "resize":
        return None
    elif key == "g":
        state.processes, state.cgroups, state.offset = not (state.processes or state.cgroups), state.processes, 0
    elif key == "o":
        state.only = ONLY_LEVELS[(ONLY_LEVELS.index(state.only) + 1) % len(ONLY_LEVELS)]
        state.offset = 0
    elif len(key) == 1 and key in "123456789":
        column = dict((digit, shown) for digit, _, shown in HIDE_FLAGS)[key]
        if column is None:
            state.hint = "no GRAPH column here"
        elif column not in [c.key for c in state.columns]:
            state.hint = "no %s column in --columns" % COLUMN_BY_KEY[column].title
        else:
            state.hidden = state.hidden ^ frozenset((column,))
    elif key == "esc":
        state.uids, state.pids, state.regex, state.who = state.base_uids, None, None, ""
        state.offset = 0
    elif key == "p":                  # threads <-> processes; from the cgroup view: processes
        state.processes, state.cgroups, state.offset = state.cgroups or not state.processes, False, 0
    elif key in ("r", "a", "c"):
        attribute = {"r": "reverse", "a": "accumulated", "c": "full_command"}[key]
        setattr(state, attribute, not getattr(state, attribute))
    else:
        return "sample"
    return None


def set_who(state, text):
    """The f filter from what was typed: a live PID, or a user's name or
    uid. Returns a hint when the text names neither."""
    text = text.strip()
    if not text:
        return ""
    number = int(text) if text.isdigit() and len(text) < 11 else None
    if number is not None and read_tgid(number) is not None:
        state.uids, state.pids, state.who = state.base_uids, frozenset((number,)), "PID %d" % number
    elif number is not None and user_name(number) != text:
        state.uids, state.pids, state.who = frozenset((number,)), None, "user %s" % user_name(number)
    elif number is None and not text.isdigit():
        try:
            state.uids, state.pids = frozenset((resolve_user(text),)), None
        except IotopError:
            return "no such PID or user: %s" % escape_text(text)
        state.who = "user %s" % escape_text(text)
    else:
        return "no such PID or user: %s" % escape_text(text)
    state.offset = 0
    return ""


def set_regex(state, text):
    """The / filter from what was typed; a hint when it is no regex."""
    import re
    if not text:
        return ""
    try:
        state.regex = re.compile(text)
    except re.error as err:
        return "not a regular expression: %s" % err
    state.offset = 0
    return ""


def status_line(state, hidden, switchable=True):
    """The header line saying what is hidden and filtered, '' when nothing.
    hidden: keys of the columns that can only say n/a; switchable: because
    delay accounting is off (not for want of taskstats or a newer kernel)."""
    parts = []
    names = [c.title for c in state.columns if c.key in hidden and c.key not in state.hidden]
    if names:
        parts.append("%s hidden: %s" % (", ".join(names), "delay accounting off, d turns it on" if switchable
                                        else "n/a here"))
    if state.hidden:
        parts.append("hidden (1-9): %s" % ", ".join(c.title for c in state.columns if c.key in state.hidden))
    if state.sort_column.key in hidden or state.sort_column.key in state.hidden:
        parts.append("sort: %s" % state.sort_column.title)
    if state.only != "off":
        parts.append("only: %s" % state.only)
    if state.who:
        parts.append("filter: %s" % state.who)
    if state.regex is not None:
        parts.append("COMMAND ~ /%s/" % escape_text(state.regex.pattern))
    if parts:
        parts.append("Esc clears filters" if state.who or state.regex is not None else "")
    return "  ".join(p for p in parts if p)


def body_height(height, summary_lines=2):
    """Rows of the table that fit under the summary and titles, above the hint line."""
    return max(0, height - summary_lines - 2)


def screen_lines(state, summary, table, total, width, height, unusable=()):
    """The whole screen as (text, attribute) lines, attribute one of
    'normal', 'title', 'hint'. summary: the lines above the titles (the
    status line included); table: the cells of all state.columns for the
    rows from state.offset on (at most body_height rows); total: how many
    rows there are; unusable: keys of columns that can only say n/a."""
    layout = fitting_columns(state, width, frozenset(unusable) | state.hidden)
    lines = [(cut_cells(text, width), "normal") for text in summary]
    lines.append((fit_cells(layout.header(), width), "title"))
    room = body_height(height, len(summary))
    if state.help:
        body = [cut_cells(text, width) for text in HELP_LINES[:room]]
    else:
        body = [cut_cells(layout.line(cells), width) for cells in table[:room]]
    lines.extend((text, "normal") for text in body)
    lines.extend(("", "normal") for _ in range(room - len(body)))
    if state.hint:
        hint = state.hint
    else:
        first = min(total, state.offset + 1)
        shown = state.sort_column.key if state.sort_column in [state.columns[i] for i in layout.indexes] \
            else "%s (not shown)" % state.sort_column.title
        hint = "sort: %s%s  rows %d-%d of %d  keys: q quit  <> sort  r o p a c i f / 1-9  ? help" % (
            shown, " (reversed)" if state.reverse else "", first, min(total, state.offset + room), total)
    lines.append((cut_cells(hint, width - 1), "hint"))
    return lines[:height]


CURSES_KEYS = {"KEY_LEFT": "left", "KEY_RIGHT": "right", "KEY_UP": "up", "KEY_DOWN": "down",
               "KEY_PPAGE": "pgup", "KEY_NPAGE": "pgdn", "KEY_HOME": "home", "KEY_END": "end",
               "KEY_RESIZE": "resize", "KEY_BACKSPACE": "backspace", "KEY_ENTER": "enter"}
PLAIN_KEYS = {27: "esc", 10: "enter", 13: "enter", 127: "backspace", 8: "backspace"}


def edit_line(text, key, cancel):
    """One key typed at a prompt: ('done' | 'cancel' | None, the text)."""
    if key in cancel:
        return "cancel", text
    if key == "enter":
        return "done", text
    if key == "backspace":
        return None, text[:-1]
    if len(key) == 1 and key.isprintable() and len(text) < 200:
        return None, text + key
    return None, text


def pick(index, key, choices):
    """One key in a list of choices: ('done' | 'cancel' | None, the index).
    Arrows move, Enter takes; a choice's first letter or number takes it."""
    if key in ("esc", "q"):
        return "cancel", index
    if key == "enter":
        return "done", index
    if key in ("left", "up", "right", "down"):
        return None, (index + (-1 if key in ("left", "up") else 1)) % len(choices)
    for number, choice in enumerate(choices):
        if key == choice[:1]:
            return "done", number
    return None, index


class TerminalGone(IotopError):
    """The terminal hung up (its SIGHUP went elsewhere, or nowhere)."""


def hung_up(fd=0):
    """Whether the terminal on fd is gone: a hangup or an error, not input."""
    import select
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(events & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, events in poller.poll(0))


class CursesScreen(object):
    """Draws lines and reads keys; nothing else."""

    def __init__(self, window, curses):
        self.window, self.curses = window, curses
        self.codes = dict((getattr(curses, name), key) for name, key in CURSES_KEYS.items()
                          if hasattr(curses, name))
        self.attributes = {"normal": curses.A_NORMAL, "title": curses.A_REVERSE, "hint": curses.A_BOLD}
        self.cursor(False)

    def cursor(self, visible):
        try:
            self.curses.curs_set(1 if visible else 0)
        except self.curses.error:
            pass

    def size(self):
        height, width = self.window.getmaxyx()
        return width, height

    def draw(self, lines):
        window, error = self.window, self.curses.error
        window.erase()
        for y, (text, attribute) in enumerate(lines):
            try:
                window.addstr(y, 0, text, self.attributes[attribute])
            except error:
                pass                  # the bottom-right cell cannot be written: harmless
        window.refresh()

    def key(self, timeout):
        """A key name, or None when timeout (seconds; None: wait) passed first."""
        self.window.timeout(-1 if timeout is None else max(0, int(timeout * 1000)))
        try:
            code = self.window.get_wch()          # a str for characters, an int for keys
        except self.curses.error:                 # nothing typed in time, or no terminal any more
            if hung_up():
                raise TerminalGone("the terminal hung up")
            return None
        if isinstance(code, str):
            code = ord(code)
        if code in self.codes:
            return self.codes[code]
        if code in PLAIN_KEYS:
            return PLAIN_KEYS[code]
        return chr(code) if 0 <= code < 0x110000 else ""

    def bottom(self, text):
        """Show text on the bottom row."""
        width, height = self.size()
        self.window.move(height - 1, 0)
        self.window.clrtoeol()
        try:
            self.window.addstr(height - 1, 0, cut_cells(text, width - 1), self.curses.A_BOLD)
        except self.curses.error:
            pass

    def prompt(self, text, cancel=("esc",)):
        """A line typed on the bottom row; None when cancelled."""
        answer, outcome = "", None
        self.cursor(True)
        try:
            while outcome is None:
                self.bottom(text + escape_text(answer))
                outcome, answer = edit_line(answer, self.key(None) or "", cancel)
        finally:
            self.cursor(False)
        return answer.strip() if outcome == "done" else None

    def choose(self, text, choices, index=0):
        """One of choices picked on the bottom row; its index, None when cancelled."""
        outcome = None
        while outcome is None:
            self.bottom("%s %s  (arrows, Enter; Esc or q cancels)" % (text, "  ".join(
                "[%s]" % c if i == index else " %s " % c for i, c in enumerate(choices))))
            outcome, index = pick(index, self.key(None) or "", choices)
        return index if outcome == "done" else None


IONICE_CLASSES = ("be", "rt", "idle")


def ionice_dialog(screen, ioprio, processes=False, proc="/proc"):
    """Ask for a thread (with processes: a process, every thread of it),
    class and level, call ioprio_set; the outcome as a hint."""
    what = "PID" if processes else "TID"
    question = "ionice: %s (Esc or q cancels): " % what
    while True:
        text = screen.prompt(question, ("esc", "q"))
        if text is None:
            return "ionice cancelled"
        tgid = read_tgid(int(text), proc) if text.isdigit() and len(text) < 11 else None
        if tgid is not None:
            break
        question = "ionice: no such %s %s; %s: " % (what, escape_text(text)[:12], what)
    ident = tgid if processes else int(text)
    choice = screen.choose("ionice class:", IONICE_CLASSES)
    if choice is None:
        return "ionice cancelled"
    ioclass, level = IONICE_CLASSES[choice], 0
    if ioclass != "idle":
        level = screen.choose("ionice %s level (0 highest):" % ioclass, "01234567", 4)
        if level is None:
            return "ionice cancelled"
    targets = list_threads(ident, proc) if processes else [ident]
    done = 0
    for tid in targets:
        try:
            ioprio.set(tid, ioclass, level)
            done += 1
        except IotopError as err:
            if read_tgid(tid, proc) is not None:     # else a thread that just ended
                return str(err)
    if not done:
        return "ionice: %s %d has ended" % (what, ident)
    return "ionice: %s %d set to %s/%d%s" % (what, ident, ioclass, level,
                                           " (%d threads)" % done if processes else "")


class OutputError(IotopError):
    """stdout refused what was written (a full disk, an I/O error)."""


def locale_encoding(fallback=None):
    """The character set of the locale (LC_CTYPE): what the terminal can
    show. Python 3.7+ writes UTF-8 to stdout in the C locale whatever the
    terminal is, so sys.stdout.encoding does not tell."""
    import codecs
    import locale
    try:
        return codecs.lookup(locale.nl_langinfo(locale.CODESET)).name
    except (AttributeError, LookupError, ValueError):
        return fallback or "utf-8"


class Output(object):
    """Text to stdout's bytes: any character the locale cannot encode is
    escaped, never an error (Python 3.6 has no reconfigure())."""

    def __init__(self, stream):
        self.stream = stream.buffer
        self.encoding = locale_encoding(stream.encoding)
        self.isatty = stream.isatty

    def terminal_width(self):
        """Cells of a line on the terminal stdout is, None when it is none."""
        try:
            return os.get_terminal_size(self.stream.fileno()).columns if self.isatty() else None
        except OSError:
            return None

    def write_lines(self, lines, prefix="", end="\n", encoding=None):
        """Write and flush lines, a thousand at a time: 10,000 rows never
        sit in memory as one string. A signal that ends the run waits until
        all are out: a killed run's output ends with a whole iteration.
        encoding: the locale's unless given."""
        encoding, write = encoding or self.encoding, self.stream.write
        try:
            with SignalsHeld():
                while True:
                    chunk = list(itertools.islice(lines, 1000))
                    if not chunk:
                        break
                    write("".join(prefix + line + end for line in chunk).encode(encoding, "backslashreplace"))
                self.stream.flush()
        except OSError as err:
            if err.errno == errno.EPIPE:
                raise
            raise OutputError("cannot write output: %s" % (err.strerror or err))


# ===========================================================================
# Command line
# ===========================================================================

EXAMPLES = """examples:
  sudo iotop_ext                      one screen per second, every thread
  sudo iotop_ext -o                   only threads doing disk I/O (as iotop)
  sudo iotop_ext -b --only=any        also threads reading pipes, sockets or the page cache
  sudo iotop_ext -b -n 1 -d 5         five seconds of I/O, printed once (cron)
  sudo iotop_ext -P -a -o             processes, totals since start
  sudo iotop_ext -G -o                cgroups (services, containers) doing disk I/O, with their block I/O
  sudo iotop_ext -p 1234 --json       one process's threads as JSON Lines
  sudo iotop_ext --sort write_syscalls -n 3
  sudo iotop_ext --columns tid,disk_write,write_syscalls,cpu_delay,command
  sudo iotop_ext -b -o -P -n 1 -d 300 --summary --json >> /var/log/iotop_ext.jsonl
  sudo iotop_ext -n 1 -d 55 --prometheus /var/lib/prometheus/node-exporter/iotop_ext.prom
  iotop_ext --replay /var/log/iotop_ext.jsonl -P            browse the log: t/T next/previous interval
  iotop_ext --replay /var/log/iotop_ext.jsonl.2.gz --replay /var/log/iotop_ext.jsonl.1 \
      --replay /var/log/iotop_ext.jsonl --begin 02:00 --end 04:00 -P --summary
columns: iotop_ext --columns help
"""


class UsageError(IotopError):
    pass


def print_text(text, stream=None):
    """Text that ends the run (--help, --man) written out now: a full disk
    is an error to report, not a loss at the interpreter's exit."""
    stream = stream or sys.stdout
    if stream is None:
        raise OutputError("standard output is closed")
    try:
        stream.write(text)
        stream.flush()
    except OSError as err:
        if err.errno == errno.EPIPE:
            raise
        raise OutputError("cannot write output: %s" % (err.strerror or err))


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)

    def _print_message(self, message, file=None):     # --help and --version
        if message:
            print_text(message, file)


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if not (0 < value < 1e9):             # rejects nan, inf, 0 and negatives
        raise argparse.ArgumentTypeError("must be a positive number of seconds: %r" % text)
    return value


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a whole number: %r" % text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be 1 or more: %r" % text)
    return value


def pid_list(text):
    pids = []
    for part in text.split(","):
        try:
            pid = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError("not a PID: %r" % part)
        if not 0 < pid < 1 << 31:
            raise argparse.ArgumentTypeError("not a valid PID: %r" % part)
        pids.append(pid)
    return pids


def log_time(text):
    moment = parse_time(text)
    if moment is None:
        raise argparse.ArgumentTypeError("not a time: %r (RFC 3339, 'YYYY-MM-DD HH:MM[:SS]' or 'HH:MM')" % text)
    return moment


IOTOP_C_REFUSED = "-A, -g, -R, -H, -W, --si, --threshold, --ascii, --unicode"


def command_regex(text):
    import re
    try:
        return re.compile(text)
    except re.error as err:
        raise argparse.ArgumentTypeError("not a regular expression: %r (%s)" % (text, err))


def make_parser():
    parser = Parser(prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
                    description="Per-thread I/O monitor: iotop's columns plus VFS bytes, "
                                "read/write syscalls and block-I/O waits.",
                    epilog=EXAMPLES)
    add = parser.add_argument
    add("-v", "--version", action="version", version="%(prog)s " + __version__)
    add("-o", action="store_const", const="disk", dest="only",
        help="only rows doing disk I/O or waiting for it (swap-in, block I/O), as iotop: --only=disk")
    add("--only", nargs="?", const="disk", choices=ONLY_LEVELS, metavar="LEVEL",
        help="-o level: disk (the default when given), any (also VFS bytes and syscalls: pipes, sockets, "
             "page cache) or off (--no-only)")
    add("--no-only", action="store_const", const="off", dest="only", help=argparse.SUPPRESS)
    add("-b", "--batch", action="store_true", help="non-interactive mode")
    add("-n", "--iter", type=positive_int, metavar="NUM", help="number of iterations before ending")
    add("-d", "--delay", type=positive_float, default=1.0, metavar="SEC",
        help="seconds between iterations (default 1)")
    add("-p", "--pid", type=pid_list, action="append", metavar="PID",
        help="processes/threads to monitor (repeatable, comma lists)")
    add("-u", "--user", action="append", metavar="USER", help="users to monitor (name or uid; repeatable)")
    add("-P", "--processes", action="store_true", help="only show processes, not all threads (--threads: all)")
    add("--threads", "--no-processes", action="store_false", dest="processes", help=argparse.SUPPRESS)
    add("-G", "--cgroups", action="store_true",
        help="one row per cgroup (systemd unit, container), with its block-layer bytes")
    add("--cgroup-depth", type=positive_int, metavar="N",
        help="with -G, fold groups deeper than N levels into their ancestor")
    add("-a", "--accumulated", action="store_true",
        help="show totals since start instead of rates (--no-accumulated: rates)")
    add("--no-accumulated", action="store_false", dest="accumulated", help=argparse.SUPPRESS)
    add("-k", "--kilobytes", action="store_true",
        help="use kilobytes instead of a human friendly unit (--no-kilobytes: human friendly)")
    add("--no-kilobytes", action="store_false", dest="kilobytes", help=argparse.SUPPRESS)
    add("-t", "--time", action="store_true", help="add a timestamp on each line (implies --batch)")
    add("-q", "--quiet", action="count", default=0,
        help="suppress header lines (-q: after the first; -qq: all; -qqq: summary too; implies --batch)")
    add("-c", "--fullcmdline", action="store_true", dest="full_command", default=True,
        help="COMMAND is the full command line (the default; --no-fullcmdline: the name only)")
    add("--no-fullcmdline", action="store_false", dest="full_command", help=argparse.SUPPRESS)
    add("--json", action="store_true", help="JSON Lines output (implies --batch)")
    add("--csv", action="store_true", help="CSV output, RFC 4180 (implies --batch)")
    add("--summary", action="store_true",
        help="after the last iteration (or Ctrl-C), the 10 tasks with most disk I/O over the whole run "
             "(implies --batch)")
    add("--columns", metavar="LIST",
        help="columns to show, in order, comma-separated (like ps -o); 'help' lists them")
    add("--sort", default=DEFAULT_SORT, metavar="COLUMN", help="sort column (default io)")
    add("--reverse", action="store_true", help="reverse the sort order")
    add("--delayacct", action="store_true",
        help="switch kernel.task_delayacct on for the run, restore it at the end")
    add("--netlink-only", action="store_true",
        help="fail when taskstats is unavailable instead of reading /proc alone")
    add("--replay", action="append", metavar="FILE",
        help="show the intervals of a log written by --json instead of live data "
             "(repeatable; - for stdin; gzip read as such)")
    add("--begin", type=log_time, metavar="TIME",
        help="replay from this time: RFC 3339, 'YYYY-MM-DD HH:MM[:SS]' or 'HH:MM' (today); "
             "local time unless an offset is given")
    add("--end", type=log_time, metavar="TIME", help="replay up to this time (as --begin)")
    add("--host", metavar="NAME", help="replay only this host's lines")
    add("--prometheus", metavar="FILE",
        help="after each iteration, replace FILE atomically with the interval's rates in Prometheus text "
             "format, for node_exporter's textfile collector (implies --batch; alone: nothing on stdout)")
    add("--prometheus-by", metavar="LABELS",
        help="labels the metrics are summed by: %s (default %s)" % (", ".join(PROMETHEUS_LABELS), PROMETHEUS_BY))
    add("--prometheus-top", type=positive_int, metavar="N",
        help="the N groups with most disk I/O get their own series, the rest one series labelled '%s' "
             "(default %d)" % (PROMETHEUS_OTHER, PROMETHEUS_TOP))
    add("--man", action="store_true", help="print this tool's man page (roff) and exit")
    add("--filter", type=command_regex, metavar="REGEX", dest="regex",
        help="only rows whose COMMAND matches the regular expression (the / key on screen)")
    iotop_c = parser.add_argument_group(
        "iotop-c flags", "iotop-c's flags are accepted as iotop-c has them: -v, -o, --no-only, -b, -n, -d, -p, -u,\n"
        "-P, --threads, -a, --no-accumulated, -k, --no-kilobytes, -t, -q, -c, --no-fullcmdline, those below,\n"
        "--show-NAME for each --hide-NAME, --show-exited, --no-dead-x, --color. Not accepted (no graph,\n"
        "no config file): %s." % IOTOP_C_REFUSED)
    for digit, name, key in HIDE_FLAGS:
        what = "no GRAPH column here: no effect" if key is None else "hide %s" % COLUMN_BY_KEY[key].title
        what += "/PID" if key == "tid" else ""
        iotop_c.add_argument("-" + digit, "--hide-" + name, action="store_true", dest="hide_" + name, help=what)
        iotop_c.add_argument("--show-" + name, action="store_false", dest="hide_" + name, help=argparse.SUPPRESS)
    iotop_c.add_argument("-e", "--hide-exited", action="store_true", help="hide the rows of tasks that ended")
    iotop_c.add_argument("--show-exited", action="store_false", dest="hide_exited", help=argparse.SUPPRESS)
    iotop_c.add_argument("-x", "--dead-x", "--no-dead-x", action="store_true", dest="dead_x",
                         help="no effect: ended tasks are always marked (exited)")
    iotop_c.add_argument("-l", "--no-color", "--color", action="store_true", dest="color",
                         help="no effect: no colours are used")
    parser.set_defaults(only="off")
    return parser


MAN_NOTES = (
    ("FILES", "/proc/PID/task/TID/io: exact I/O counters of each thread. "
              "/proc/PID/task/TID/stat: names, start times. /proc/vmstat: what the block layer did "
              "(Actual DISK READ/WRITE). /proc/sys/kernel/task_delayacct: delay accounting, switched by "
              "--delayacct or the d key and restored on exit."),
    ("NOTES", "Needs root or CAP_NET_ADMIN for taskstats; without it /proc alone is read and the delay "
              "columns say n/a. Delay accounting is off by default since Linux 5.14: SWAPIN, IO and "
              "BLKIO CNT stay n/a until it is on, and only tasks started afterwards carry the data. "
              "taskstats rounds I/O counters down to 1024; the /proc counters shown are exact. "
              "The tool only reads: it writes nothing but its output, and kernel.task_delayacct when asked."),
    ("EXIT STATUS", "0 when done, 1 on an error (one line on stderr), 2 on a usage error or a Python older "
                    "than 3.6, 128+N when ended by signal N."),
    ("SEE ALSO", "iotop(8), iotop-c(8), ionice(1), proc(5), the kernel's Documentation/accounting/taskstats.rst"),
)


def roff(text):
    """Text for a roff line: backslashes and hyphens escaped, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in text.split("\n"))


def man_option(action):
    """.TP entry of one option: its spellings in bold, the value in italics, the help."""
    value = ""
    if action.nargs != 0:
        value = " \\fI%s\\fR" % roff(action.metavar or action.dest.upper())
        if action.nargs == "?":
            value = " [%s]" % value.strip()
    names = ", ".join("\\fB%s\\fR%s" % (roff(name), value) for name in action.option_strings)
    text = action.help % dict(vars(action), prog=PROG) if "%" in action.help else action.help
    return [".TP", names, roff(text)]


def man_page(parser):
    """iotop_ext(8) in roff, from the parser, the examples, the keys and the columns."""
    head, _, body = __doc__.partition("\n\n")
    lines = ['.TH IOTOP_EXT 8 "" "%s %s" "System Administration"' % (PROG, __version__),
             ".SH NAME", roff(head.replace("iotop_ext - ", PROG + " - ")),
             ".SH SYNOPSIS", ".B %s" % PROG, "[\\fIOPTIONS\\fR]",
             ".SH DESCRIPTION", roff(parser.description), ".PP", roff(body.partition("\n\nUSAGE")[0])]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help != argparse.SUPPRESS]
        if not actions:
            continue
        if group.description:
            lines.extend([".SH " + roff(group.title.upper()), roff(group.description)])
        elif ".SH OPTIONS" not in lines:
            lines.append(".SH OPTIONS")
        for action in actions:
            lines.extend(man_option(action))
    lines.append(".SH EXAMPLES")
    for line in EXAMPLES.splitlines()[1:]:
        command, _, what = line.strip().partition("  ")
        if command.startswith("sudo "):
            lines.extend([".TP", "\\fB%s\\fR" % roff(command), roff(what.strip())])
    lines.extend([".SH COLUMNS", ".nf", roff(columns_help()), ".fi",
                  ".SH INTERACTIVE KEYS", ".nf", roff("\n".join(HELP_LINES[2:])), ".fi"])
    for title, text in MAN_NOTES:
        lines.extend([".SH " + title, roff(text)])
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = make_parser()
    options = parser.parse_args(argv)
    if options.man:
        print_text(man_page(parser))
        sys.exit(0)
    for name in ("json", "csv"):
        if getattr(options, name) and (options.time or options.quiet):
            raise UsageError("--%s does not combine with -t or -q" % name)
    if options.json and options.csv:
        raise UsageError("--json and --csv exclude each other")
    if options.replay is None and (options.begin is not None or options.end is not None or options.host):
        raise UsageError("--begin, --end and --host apply to --replay")
    if options.replay is not None and (options.delayacct or options.netlink_only):
        raise UsageError("--delayacct and --netlink-only apply to live data, not to --replay")
    if options.begin is not None and options.end is not None and options.begin >= options.end:
        raise UsageError("--begin must come before --end")
    if options.columns == "help":
        print_text(columns_help() + "\n")
        sys.exit(0)
    columns = ((CGROUP_COLUMNS if options.cgroups else DEFAULT_COLUMNS) if options.columns is None
               else tuple(column_for(name) for name in options.columns.split(",")))
    hidden = set(key for _, name, key in HIDE_FLAGS if getattr(options, "hide_" + name))
    options.columns = tuple(c for c in columns if c.key not in hidden)
    options.chosen_columns, options.hidden_columns = columns, hidden & set(c.key for c in columns)
    if not options.columns:
        raise UsageError("every column is hidden")
    options.sort_column = column_for(options.sort)
    options.pids = None if options.pid is None else set(p for group in options.pid for p in group)
    options.uids = None if options.user is None else set(resolve_user(u) for u in options.user)
    if options.prometheus is not None:
        check_output_file(options.prometheus)
    elif options.prometheus_by is not None or options.prometheus_top is not None:
        raise UsageError("--prometheus-by and --prometheus-top need --prometheus FILE")
    options.prometheus_by = prometheus_labels(options.prometheus_by or PROMETHEUS_BY)
    if options.cgroups and "pid" in options.prometheus_by:
        raise UsageError("-G rows are groups, not processes: --prometheus-by has no pid with -G")
    options.prometheus_top = options.prometheus_top or PROMETHEUS_TOP
    machine = options.json or options.csv or options.prometheus is not None
    options.notices = Notices(quiet=options.quiet > 0, into_output=machine)
    if options.time or options.quiet or machine or options.summary:
        options.batch = True
    return options


def prometheus_labels(text):
    names = text.split(",")
    for name in names:
        if name not in PROMETHEUS_LABELS:
            raise UsageError("unknown --prometheus-by label: %s (choose from %s)" % (name, ", ".join(PROMETHEUS_LABELS)))
    if len(set(names)) != len(names):
        raise UsageError("--prometheus-by names a label twice: %s" % text)
    return tuple(names)


def check_output_file(path):
    """A file the tool will replace: its directory must exist, it must not be
    one, nor a device, FIFO or socket (renaming over /dev/null as root would
    put a plain file in its place); a symlink is replaced, not followed."""
    if not path:
        raise UsageError("no file name given")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError("no such directory: %s" % directory)
    if os.path.isdir(path):
        raise UsageError("%s is a directory, not a file" % path)
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise UsageError("%s is not a regular file" % path)


class Terminated(Exception):
    """SIGINT, SIGTERM or SIGHUP: unwind and leave cleanly."""

    def __init__(self, signum):
        Exception.__init__(self, signum)
        self.signum = signum


# Not empty once shutdown has begun.
shutdown_begun = []


def on_signal(signum, frame):
    if shutdown_begun:             # caught before the mask took hold: shutdown is under way
        return
    stop_signals()
    raise Terminated(signum)


def stop_signals():
    """Once shutdown starts, no further SIGINT/SIGTERM/SIGHUP may interrupt
    it (the --delayacct restore must run): they stay blocked, and any the
    interpreter caught already find on_signal a no-op."""
    shutdown_begun.append(True)
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def leader_comms(sample):
    return dict((t.tgid, t.comm) for t in sample.tasks if t.tid == t.tgid)


def open_taskstats(netlink_only, notices):
    """A TaskstatsClient; or, where taskstats is refused (no CAP_NET_ADMIN)
    or absent (a container's network namespace), None after a notice
    saying what the /proc fallback lacks."""
    client = None
    try:
        client = TaskstatsClient()
        list(client.get_stats([os.getpid()]))       # EPERM shows only here
        return client
    except NetlinkError as err:
        if client is not None:
            client.close()
        if netlink_only:
            raise
        scope = "all tasks" if os.geteuid() == 0 else "only your own processes"
        notices.say("%s; reading /proc/PID/task/TID/io instead (%s; SWAPIN, IO and BLKIO CNT show n/a)"
                    % (explain(err), scope))
        return None


def check_pids(pids, sample, notices):
    """Say which -p PIDs cannot be watched; fail when none can."""
    present = set(t.tid for t in sample.tasks) | set(t.tgid for t in sample.tasks)
    missing = sorted(pids - present)
    if not missing:
        return
    gone = [p for p in missing if read_tgid(p) is None]
    unreadable = [p for p in missing if p not in gone]
    problems = []
    if gone:
        problems.append("no such process: %s" % ", ".join(map(str, gone)))
    if unreadable:
        problems.append("cannot read process %s (permission denied; run as root)"
                        % ", ".join(map(str, unreadable)))
    if len(missing) == len(pids):
        raise IotopError("; ".join(problems))
    notices.say("; ".join(problems))


def sorted_rows(sample, settings, uids, labeller, pids=None):
    """The rows of one sample as the settings (options or ScreenState) ask;
    pids: only these processes or threads (the f key)."""
    # idle rows add nothing to the totals: -o may drop them first
    rows = build_rows(sample, settings.processes, settings.accumulated, uids, settings.only, settings.cgroups)
    if settings.hide_exited:
        rows = [row for row in rows if not row.exited]
    labeller.new_refresh()
    if pids is not None:
        rows = [r for r in rows if r.has_pid(pids)]
    if settings.regex is not None:
        # the real text, as JSON records it: what is shown escaped is matched as it is
        comms, search = leader_comms(sample), settings.regex.search
        rows = [r for r in rows if search(labeller.command(r, comms.get(r.tgid), not settings.processes, real_text))]
    return sort_rows(rows, settings.sort_column, settings.reverse, lambda key, row: label(labeller, key, row))


def batch_views(options, labeller, out):
    """The views a batch run renders every iteration into, and the text's width."""
    width = out.terminal_width()
    if width is not None and options.time:
        width -= len("HH:MM:SS ")
    views = [PrometheusView(options, labeller)] if options.prometheus is not None else []
    if options.json or options.csv:
        views.append((JsonView if options.json else CsvView)(options, labeller, out))
    elif options.prometheus is None:                                  # --prometheus alone: nothing on stdout
        views.append(TextView(options, labeller, out, width))
    return views, width


def show_sample(options, sample, views, totals, labeller):
    """Render one batch sample. Its rows go when it returns: at 30,000
    threads two refreshes' rows are megabytes."""
    if not sample.complete:
        options.notices.say("the kernel dropped exit records (listener overrun): some intervals "
                            "miss ended threads (JSON: \"complete\": false)", once=True)
    rows = sorted_rows(sample, options, options.uids, labeller)
    comms = leader_comms(sample)
    for view in views:
        view.render(rows, sample, comms)
    if totals is not None:
        totals.add(sample)


def run_batch(options, sampler, labeller, out):
    views, width = batch_views(options, labeller, out)
    totals = RunTotals(options.processes, options.uids, cgroups=options.cgroups) if options.summary else None
    deadline = time.monotonic()
    iteration = 0
    try:
        while options.iter is None or iteration < options.iter:
            deadline = max(deadline + options.delay, time.monotonic())
            time.sleep(max(0.0, deadline - time.monotonic()))
            show_sample(options, sampler.sample(), views, totals, labeller)
            options.notices.delivered()
            iteration += 1
    except Terminated:          # Ctrl-C ends a run without -n: its summary covers the iterations shown
        print_top(options, totals, views, labeller, out, width)
        raise
    print_top(options, totals, views, labeller, out, width)


def print_top(options, totals, views, labeller, out, width):
    """--summary: the top rows over the run, in the run's format."""
    if totals is not None and totals.last is not None:
        top_view = views[-1] if options.json or options.csv else TopTextView(options, labeller, out, width)
        labeller.new_refresh()
        top_view.render_top(totals.top(), totals.last, leader_comms(totals.last))


class DelayacctSwitch(object):
    """Changes kernel.task_delayacct for the run and puts the first value
    back on every way out (close() runs in run()'s finally)."""

    def __init__(self):
        self.original = self.current = read_delayacct()

    def set(self, on):
        if self.original is None:
            raise IotopError("this kernel has no %s (delay accounting is not switchable)" % DELAYACCT_SYSCTL)
        write_delayacct(on)
        self.current = on

    def close(self):
        if self.original is not None and self.current != self.original:
            write_delayacct(self.original)
            self.current = self.original


DELAYACCT_ON_NOTE = "delay accounting on: only tasks started from now on carry delay data"


def toggle_delayacct(switch):
    """The 'd' key: the outcome as a hint line."""
    try:
        switch.set(not switch.current)
    except IotopError as err:
        return str(err)
    return DELAYACCT_ON_NOTE if switch.current else "delay accounting off"


def draw_rows(screen, view, state, summary, rows, sample, unusable, switchable):
    """Draw the summary, the status line and the rows in view; (rows, rows a page holds)."""
    width, height = screen.size()
    status = status_line(state, unusable, switchable)
    if status:
        summary.append(status)
    room = body_height(height, len(summary))
    state.offset = max(0, min(state.offset, len(rows) - room))
    comms = leader_comms(sample) if sample is not None else {}
    table = [view.row_cells(row, sample, comms) for row in rows[state.offset:state.offset + room]]
    screen.draw(screen_lines(state, summary, table, len(rows), width, height, unusable))
    return len(rows), room


def ask_filter(screen, state, action):
    """The f (user or PID) and / (COMMAND regex) keys: the outcome as a hint."""
    if action == "filter":
        text = screen.prompt("filter by user or PID (Esc cancels): ")
        return "" if text is None else set_who(state, text)
    text = screen.prompt("filter COMMAND by regular expression (Esc cancels): /")
    return "" if text is None else set_regex(state, text)


def terminal_curses():
    """The curses module, once it is known to drive this terminal."""
    import curses
    try:
        curses.setupterm()
    except curses.error as err:
        raise IotopError("cannot drive this terminal (TERM=%s: %s); use -b for batch output"
                         % (os.environ.get("TERM", "unset"), err))
    return curses


def run_screen(curses, session):
    """Run session(window) on the terminal, restored on every way out
    (curses.wrapper); a terminal that hangs up ends it as SIGHUP would."""
    os.environ.setdefault("ESCDELAY", "25")      # Esc alone, not a key sequence, within 25 ms
    try:
        curses.wrapper(session)
    except (TerminalGone, curses.error):     # (restoring a terminal that is gone fails too)
        if hung_up():
            raise Terminated(signal.SIGHUP)
        raise


def run_interactive(options, sampler, labeller, ioprio, switch):
    """iotop's screen (run_screen). Columns delay accounting off leaves n/a
    are named in the status line."""
    curses = terminal_curses()
    state = ScreenState(options)
    view = TextView(state, labeller, None)

    def draw(screen, sample):
        labeller.full_command = state.full_command
        if sample is None:
            summary, rows = ["collecting the first %g s..." % options.delay, ""], []
            unusable = frozenset(c.key for c in state.columns if c.delayacct and switch.current is False)
        else:
            rows = sorted_rows(sample, state, state.uids, labeller, state.pids)
            summary, unusable = view.summary(rows, sample), unavailable(state.columns, sample)
        switchable = sample is None or only_delayacct_lacks(unusable, sample)
        return draw_rows(screen, view, state, summary, rows, sample, unusable, switchable)

    def session(window):
        screen = CursesScreen(window, curses)
        sample, iterations = None, 0
        deadline = time.monotonic() + options.delay
        while True:
            total, page = draw(screen, sample)
            key = screen.key(deadline - time.monotonic())
            action = "sample" if key is None else apply_key(state, key, total, page)
            if action == "quit":
                return
            if action == "ionice":
                state.hint = ionice_dialog(screen, ioprio, state.processes)
                labeller.prios_until = 0.0          # the new priority shows at once, idle or not
            elif action in ("filter", "search"):
                state.hint = ask_filter(screen, state, action)
            elif action == "delayacct":
                state.hint = toggle_delayacct(switch)
            elif action == "sample":
                sample = sampler.sample()
                iterations += 1
                if options.iter is not None and iterations > options.iter:
                    return
                deadline = max(deadline + options.delay, time.monotonic()) if key is None \
                    else time.monotonic() + options.delay
    run_screen(curses, session)


def open_exit_listener(client, notices):
    """An ExitListener, or None after a notice saying what is lost without it."""
    if client is None:
        return None
    try:
        return ExitListener(client.family)
    except NetlinkError as err:
        notices.say("no exit records (%s): I/O of threads that start and end between two "
                    "samples is not counted" % err)
        return None


def replay_title(sample):
    """Which recorded interval a replayed screen shows."""
    start, end = time.localtime(sample.start), time.localtime(sample.wall)
    return "%s  %s - %s  (run %s, iteration %s)" % (
        escape_text(sample.host), time.strftime("%Y-%m-%d %H:%M:%S", start),
        time.strftime("%H:%M:%S" if start[:3] == end[:3] else "%Y-%m-%d %H:%M:%S", end),
        escape_text(str(sample.run)), sample.iteration)


def replay_batch(options, replay, labeller, out):
    """The window's intervals through the batch views; with --summary only its
    top. Returns notices of its own."""
    views, width = batch_views(options, labeller, out)
    text = not (options.json or options.csv)
    totals = WindowTotals(options.processes, options.uids, cgroups=options.cgroups) if options.summary else None
    host, several = None, text and totals is None and replay.several_hosts()
    for sample in itertools.islice(replay.samples(), options.iter):
        if totals is not None:
            totals.add(sample)
            continue
        if text and sample.host != host and (several or len(replay.hosts) > 1):
            out.write_lines(iter(["Host: %s" % escape_text(sample.host)]))
        host = sample.host
        rows, comms = sorted_rows(sample, options, options.uids, labeller), leader_comms(sample)
        for view in views:
            view.render(rows, sample, comms)
    if totals is not None:
        top_view = views[-1] if not text else TopTextView(options, labeller, out, width)
        for host, rows, sample in totals.top():
            if text:
                out.write_lines(iter(["Host: %s  %s - %s" % (
                    escape_text(host), time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sample.wall - sample.elapsed)),
                    time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sample.wall)))]))
            top_view.render_top(rows, sample, leader_comms(sample))
        return totals.notices()
    return []


def replay_interactive(options, replay, labeller):
    """The live screen over recorded intervals: t / T step, b jumps to a time."""
    curses = terminal_curses()
    browser = IntervalBrowser(replay)
    state = ScreenState(options)
    view = TextView(state, labeller, None)
    keys = "  t/T next/previous interval  b jump to a time"

    def draw(screen, sample):
        if sample is None:
            rows, summary, unusable = [], ["no recorded interval in this window" + keys, "", ""], frozenset()
        else:
            rows = sorted_rows(sample, state, state.uids, labeller, state.pids)
            summary = [replay_title(sample) + keys] + view.summary(rows, sample)
            unusable = unavailable(state.columns, sample)
        return draw_rows(screen, view, state, summary, rows, sample, unusable, False)

    def navigate(screen, key):
        """(the interval a navigation key leads to or None, a hint)."""
        if key in "tT":
            return browser.step(1 if key == "t" else -1), "no recorded interval there"
        text = screen.prompt("jump to (YYYY-MM-DD HH:MM[:SS] or HH:MM): ") or ""
        wall = parse_time(text)
        if wall is None:
            return None, "not a time: %s" % escape_text(text)
        return browser.seek(wall), "no recorded interval ends at or after %s" % escape_text(text)

    def session(window):
        screen = CursesScreen(window, curses)
        sample = browser.step(1)
        while True:
            total, page = draw(screen, sample)
            key = screen.key(3600)
            if key in ("t", "T", "b"):
                moved, hint = navigate(screen, key)
                state.hint = "" if moved is not None else hint
                sample = moved or sample
                continue
            action = None if key is None else apply_key(state, key, total, page)
            if action == "quit":
                return
            if action in ("ionice", "delayacct"):
                state.hint = "a replay shows what was recorded: nothing to change"
            elif action in ("filter", "search"):
                state.hint = ask_filter(screen, state, action)
    run_screen(curses, session)


def run_replay(options, out):
    """--replay: the log's intervals instead of live samples."""
    interactive = not (options.batch or not out.isatty())
    replay = Replay(options.replay, options.begin, options.end, options.host, options.pids,
                    options.cgroups, options.cgroup_depth, None if interactive else options.uids, grouping=interactive)
    labeller = RecordedLabeller()
    said = []
    try:
        if not interactive:
            said = replay_batch(options, replay, labeller, out)
        elif "-" in options.replay:
            raise IotopError("--replay - reads the log from stdin, which a screen cannot browse; add -b")
        else:
            replay_interactive(options, replay, labeller)
    finally:
        notices = Notices(quiet=options.quiet > 0)       # after the last record: stderr
        for notice in replay.notices() + said:
            notices.say(escape_text(notice))


def run(options, out):
    if options.replay is not None:
        return run_replay(options, out)
    notices = options.notices
    switch = DelayacctSwitch()
    if options.delayacct and switch.current is not True:
        switch.set(True)
        notices.say("%s (restored when iotop_ext ends)" % DELAYACCT_ON_NOTE)
    client = listener = sampler = None
    try:
        client = open_taskstats(options.netlink_only, notices)
        listener = open_exit_listener(client, notices)
        sampler = Sampler(client, options.pids, listener=listener,
                          all_stats=any(c.key in ASK_EVERY_THREAD for c in options.columns))
        interactive = not (options.batch or not out.isatty())
        cgroups = CgroupSource()
        sampler = CgroupSampler(sampler, cgroups, options.cgroup_depth, None if interactive else options.uids,
                                grouping=options.cgroups or interactive)
        ioprio = IoPriority()
        labeller = Labeller(ioprio)
        labeller.full_command = options.full_command
        sample = sampler.sample()
        if options.pids is not None:
            check_pids(options.pids, sample, notices)
        notice = ""
        if client is not None and sample.delayacct is False:
            notice = ("delay accounting is off: SWAPIN, IO and BLKIO CNT show n/a; turn it on with "
                      "--delayacct or 'sysctl kernel.task_delayacct=1' (only tasks started afterwards "
                      "get the data)")
        for text in (sampler.notice, cgroups.uncounted()) if options.cgroups else ():
            if text:
                notices.say(text)
        if not interactive:
            if notice:
                notices.say(notice)
            run_batch(options, sampler, labeller, out)
        else:
            run_interactive(options, sampler, labeller, ioprio, switch)
    finally:
        try:
            stop_signals()
        finally:
            close_all([sampler, listener, client, switch])


def close_all(resources):
    """Close each resource in turn, the later ones even if an earlier one fails."""
    if not resources:
        return
    try:
        if resources[0] is not None:
            resources[0].close()
    finally:
        close_all(resources[1:])


def label(labeller, key, row):
    if key == "command":
        return labeller.command(row, None, False)
    return getattr(labeller, key)(row)


def explain(err):
    """The one line shown for a netlink failure."""
    if isinstance(err, NetlinkError) and err.errno in (errno.EPERM, errno.EACCES):
        return "taskstats needs root or CAP_NET_ADMIN (%s)" % err
    return str(err)


def quiet_stdout():
    """After a closed pipe, point stdout at /dev/null so the interpreter's
    final flush cannot complain."""
    if sys.stdout is None:                        # closed from the start: nothing to flush
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except OSError:
        pass


def exit_status(err):
    """Exit code for what ended the run, after at most one line on stderr."""
    if isinstance(err, SystemExit):               # --help, --version
        return err.code
    if isinstance(err, KeyboardInterrupt):
        return 128 + signal.SIGINT
    if isinstance(err, Terminated):
        return 128 + err.signum
    if isinstance(err, OSError) and err.errno == errno.EPIPE:
        quiet_stdout()                            # a reader like head went away
        return 0
    if isinstance(err, IotopError):
        complain(explain(err))
        if isinstance(err, OutputError):
            quiet_stdout()                        # the final flush would fail again
        return 1
    complain("internal error: %s: %s (please report)" % (type(err).__name__, err))
    return 1


def main(argv=None):
    for signum in SIGNALS:
        signal.signal(signum, on_signal)
    try:
        try:
            options = parse_args(sys.argv[1:] if argv is None else argv)
        except OutputError:
            raise
        except IotopError as err:
            complain("%s (try --help)" % err)
            return 2
        if sys.stdout is None:
            raise IotopError("standard output is closed")
        run(options, Output(sys.stdout))
        return 0
    except BaseException as err:                  # every way out is one line at most
        stop_signals()
        return exit_status(err)


if __name__ == "__main__":
    sys.exit(main())
