"""Packet traces: the in-memory packet, pcap/pcapng files, and the replay file.

A trace is a sequence of `TracePacket`: the device the packet arrives on,
its timestamp in nanoseconds and its bytes (starting at the Ethernet header).
On disk it is a pcapng file whose interface id is the device.  The C
programs (reference runner, simulated NIC) read the *replay* format written
by `write_replay`, which the Python side produces after validating a trace.

Replay format (all little-endian):
    header:  8 bytes magic b"MTRACE1\\0", u32 packet count, u32 reserved (0)
    records: u64 time_ns, u16 device, u16 length, `length` bytes of packet
"""
from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Iterable, Sequence

import dpkt

from analyses.errors import MaestroError

REPLAY_MAGIC = b"MTRACE1\0"
_REPLAY_HEADER = struct.Struct("<8sII")
_REPLAY_RECORD = struct.Struct("<QHH")


@dataclass(frozen=True)
class TracePacket:
    """One packet of a trace: arrival device, time (ns) and frame bytes."""

    device: int
    time_ns: int
    data: bytes


class TraceError(MaestroError):
    """A trace that cannot be read; the message names the file and packet."""


def write_replay(path: str | Path, packets: Sequence[TracePacket]) -> None:
    """Write `packets` in the replay format read by the C runtime."""
    chunks = [_REPLAY_HEADER.pack(REPLAY_MAGIC, len(packets), 0)]
    for index, pkt in enumerate(packets):
        if not 0 <= pkt.device <= 0xFFFF or not 0 < len(pkt.data) <= 0xFFFF:
            raise TraceError(
                f"packet {index}: device {pkt.device} / length {len(pkt.data)} out of range"
            )
        if not 0 <= pkt.time_ns < 1 << 64:
            raise TraceError(f"packet {index}: time {pkt.time_ns} ns out of range")
        chunks.append(_REPLAY_RECORD.pack(pkt.time_ns, pkt.device, len(pkt.data)))
        chunks.append(pkt.data)
    Path(path).write_bytes(b"".join(chunks))


def replay_size(packets: Iterable[TracePacket]) -> int:
    """Bytes the replay file of `packets` takes (for progress and checks)."""
    return _REPLAY_HEADER.size + sum(_REPLAY_RECORD.size + len(p.data) for p in packets)


# --- pcap / pcapng files ------------------------------------------------------
#
# Writing uses dpkt's pcapng block classes; only the Enhanced Packet Block
# header of the hot loop is packed with the struct layout dpkt's class
# defines, because building one dpkt object per packet is ~20x slower.
# Reading walks the blocks itself: dpkt's Readers drop the interface id and
# turn timestamps into floats, and we need both exactly.

_EPB = dpkt.pcapng.EnhancedPacketBlockLE
#: EPB header without its trailing length copy (type ... pkt_len), and the copy.
_EPB_HEAD = struct.Struct(_EPB.__hdr_fmt__[:-1])
_EPB_TAIL = struct.Struct(_EPB.__byte_order__ + "I")
_EPB_MIN = _EPB.__hdr_len__
_MAX_PACKET = 0xFFFF
_NS = 10**9
_PADDING = (b"", b"\0", b"\0\0", b"\0\0\0")
_WRITE_BATCH = 1 << 16


def _pcapng_header(devices: int) -> bytes:
    """Section Header Block plus one Ethernet, ns-resolution IDB per device."""
    opt = dpkt.pcapng.PcapngOptionLE
    shb = dpkt.pcapng.SectionHeaderBlockLE(
        opts=[opt(code=dpkt.pcapng.PCAPNG_OPT_SHB_USERAPPL, data=b"maestro"), opt()]
    )
    blocks = [bytes(shb)]
    for device in range(devices):
        idb = dpkt.pcapng.InterfaceDescriptionBlockLE(
            linktype=dpkt.pcap.DLT_EN10MB,
            snaplen=_MAX_PACKET,
            opts=[
                opt(code=dpkt.pcapng.PCAPNG_OPT_IF_NAME, data=f"dev{device}".encode()),
                opt(code=dpkt.pcapng.PCAPNG_OPT_IF_TSRESOL, data=b"\x09"),  # 10^-9 s
                opt(),
            ],
        )
        blocks.append(bytes(idb))
    return b"".join(blocks)


def _epb_chunks(packets: Iterable[TracePacket], devices: int, path: Path):
    """Yield (byte strings, packet count) batches: the EPBs of `packets`."""
    pack_head, pack_tail = _EPB_HEAD.pack, _EPB_TAIL.pack
    epb_type = dpkt.pcapng.PCAPNG_BT_EPB
    chunks: list[bytes] = []
    in_batch = 0
    for index, pkt in enumerate(packets):
        data, device, time_ns = pkt.data, pkt.device, pkt.time_ns
        length = len(data)
        if not 0 <= device < devices:
            raise TraceError(
                f"{path}: packet {index}: device {device} outside the {devices} interfaces"
            )
        if not 0 < length <= _MAX_PACKET:
            raise TraceError(f"{path}: packet {index}: length {length} not in 1..{_MAX_PACKET}")
        if not 0 <= time_ns < 1 << 64:
            raise TraceError(f"{path}: packet {index}: time {time_ns} ns out of range")
        pad = -length & 3
        total = _EPB_MIN + length + pad
        chunks.append(
            pack_head(epb_type, total, device, time_ns >> 32, time_ns & 0xFFFFFFFF, length, length)
        )
        chunks.append(data)
        if pad:
            chunks.append(_PADDING[pad])
        chunks.append(pack_tail(total))
        in_batch += 1
        if in_batch == _WRITE_BATCH:
            yield chunks, in_batch
            chunks, in_batch = [], 0
    yield chunks, in_batch


def write_pcapng(path: str | Path, packets: Iterable[TracePacket], devices: int = 2) -> int:
    """Write `packets` to a pcapng file and return how many were written.

    The file has one Ethernet interface per device (named "dev0", "dev1", ...,
    nanosecond timestamps); each packet is an Enhanced Packet Block on the
    interface of its device.  Raises TraceError for a packet that does not
    fit (device out of range, empty or >65535 bytes) or an I/O failure.
    """
    path = Path(path)
    if devices < 1:
        raise TraceError(f"{path}: a trace needs at least one device, got {devices}")
    count = 0
    try:
        with path.open("wb") as out:
            out.write(_pcapng_header(devices))
            for batch, in_batch in _epb_chunks(packets, devices, path):
                out.writelines(batch)
                count += in_batch
    except OSError as exc:
        raise TraceError(f"{path}: cannot write trace: {exc.strerror or exc}") from exc
    except TraceError:
        path.unlink(missing_ok=True)  # no half-written trace left behind
        raise
    return count


def read_trace(path: str | Path) -> list[TracePacket]:
    """Read a pcapng or classic pcap file into TracePackets.

    pcapng: the device is the packet's interface id and the time is exact
    integer nanoseconds (scaled by the interface's if_tsresol / if_tsoffset).
    Classic pcap: every packet is on device 0, with µs or ns time as the file
    says.  Anything unreadable raises TraceError naming the file and the
    (0-based) packet index, never a parser traceback.
    """
    path = Path(path)
    buf = _read_bounded(path)
    try:
        if buf[:4] == _SHB_MAGIC:
            return _PcapngReader(path, buf).read()
        if len(buf) >= 4 and _pcap_magic(buf) is not None:
            return _read_pcap(path, buf)
    except (dpkt.dpkt.Error, struct.error, ValueError, UnicodeDecodeError) as exc:
        # Our own checks run first; this is a backstop for dpkt's parsers.
        raise TraceError(f"{path}: corrupt trace: {exc}") from exc
    raise TraceError(
        f"{path}: packet 0: not a pcap or pcapng file (starts with {buf[:4].hex() or 'nothing'})"
    )


#: The largest trace file read into memory (a device such as /dev/zero, or a
#: FIFO, is refused before reading: it may never end).
MAX_TRACE_BYTES = 8 << 30


def _read_bounded(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_TRACE_BYTES (TraceError otherwise)."""
    try:
        with path.open("rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise TraceError(f"{path}: packet 0: not a regular file (a device, FIFO or folder "
                                 "cannot be a trace)")
            if info.st_size > MAX_TRACE_BYTES:
                raise TraceError(f"{path}: {info.st_size} bytes; traces of up to {MAX_TRACE_BYTES} "
                                 "bytes are read")
            buf = f.read(MAX_TRACE_BYTES + 1)  # bounded even if the file grows meanwhile
    except OSError as exc:
        raise TraceError(f"{path}: cannot read trace: {exc.strerror or exc}") from exc
    if len(buf) > MAX_TRACE_BYTES:
        raise TraceError(f"{path}: more than {MAX_TRACE_BYTES} bytes; not read")
    return buf


# --- pcapng reading -----------------------------------------------------------

#: The SHB type reads the same in both byte orders.
_SHB_MAGIC = struct.pack("<I", dpkt.pcapng.PCAPNG_BT_SHB)
_BLOCK_MIN = 12  # type, length, trailing length


@dataclass
class _Interface:
    """What a packet needs from its Interface Description Block."""

    linktype: int
    scale_num: int  # ns = ticks * scale_num // scale_den + offset_ns
    scale_den: int
    offset_ns: int


def _interface(idb) -> _Interface:
    """The linktype and timestamp scaling of a parsed IDB (dpkt object)."""
    num, den, offset = _NS, 10**6, 0  # pcapng default: microseconds
    order = idb.__hdr_fmt__[0]  # "<" or ">"
    for opt in idb.opts:
        if opt.code == dpkt.pcapng.PCAPNG_OPT_IF_TSRESOL and opt.data:
            resol = opt.data[0]
            # MSB set: negative power of 2, else negative power of 10.
            den = 2 ** (resol & 0x7F) if resol & 0x80 else 10 ** (resol & 0x7F)
        elif opt.code == dpkt.pcapng.PCAPNG_OPT_IF_TSOFFSET and len(opt.data) == 8:
            offset = struct.unpack(order + "q", opt.data)[0] * _NS
    return _Interface(idb.linktype, num, den, offset)


class _PcapngReader:
    """Walks the blocks of a pcapng file held in memory."""

    def __init__(self, path: Path, buf: bytes):
        self.path, self.buf = path, buf
        self.order = "<"
        self.interfaces: list[_Interface] = []
        self.packets: list[TracePacket] = []

    def fail(self, what: str) -> TraceError:
        """An error about the packet being read (index = packets so far)."""
        return TraceError(f"{self.path}: packet {len(self.packets)}: {what}")

    def read(self) -> list[TracePacket]:
        """All packets of the file, in file order."""
        buf, pos = self.buf, 0
        while pos < len(buf):
            pos = self._block(pos)
        return self.packets

    def _block(self, pos: int) -> int:
        """Handle the block at `pos` and return the offset of the next one."""
        buf = self.buf
        if len(buf) - pos < _BLOCK_MIN:
            raise self.fail(f"truncated block at byte {pos} ({len(buf) - pos} bytes left)")
        if buf[pos : pos + 4] == _SHB_MAGIC:
            self._byte_order(pos)
        block_type, length = struct.unpack_from(self.order + "II", buf, pos)
        if length < _BLOCK_MIN or length % 4:
            raise self.fail(f"corrupt block at byte {pos}: length {length}")
        if pos + length > len(buf):
            raise self.fail(
                f"truncated block at byte {pos}: needs {length} bytes, file has {len(buf) - pos}"
            )
        block = buf[pos : pos + length]
        (trailer,) = struct.unpack_from(self.order + "I", block, length - 4)
        if trailer != length:
            raise self.fail(f"corrupt block at byte {pos}: length {length} vs trailer {trailer}")
        handler = self._HANDLERS.get(block_type)
        if handler is not None:
            handler(self, block, pos)
        return pos + length

    def _byte_order(self, pos: int) -> None:
        """Set the byte order from a Section Header Block's magic."""
        if len(self.buf) - pos < 12:
            raise self.fail(f"truncated section header at byte {pos}")
        # dpkt names the magic as read big-endian, whatever the file's order.
        (bom,) = struct.unpack_from(">I", self.buf, pos + 8)
        if bom == dpkt.pcapng.BYTE_ORDER_MAGIC:
            self.order = ">"
        elif bom == dpkt.pcapng.BYTE_ORDER_MAGIC_LE:
            self.order = "<"
        else:
            raise self.fail(f"bad byte-order magic {bom:#x} at byte {pos}")

    def _block_class(self, le_class, be_class):
        return le_class if self.order == "<" else be_class

    def _section(self, block: bytes, pos: int) -> None:
        """A new section: its interfaces are numbered from 0 again."""
        kls = self._block_class(dpkt.pcapng.SectionHeaderBlockLE, dpkt.pcapng.SectionHeaderBlock)
        shb = self._parse(kls, block, pos)
        if shb.v_major != dpkt.pcapng.PCAPNG_VERSION_MAJOR:
            raise self.fail(f"unsupported pcapng version {shb.v_major}.{shb.v_minor}")
        self.interfaces = []

    def _interface_block(self, block: bytes, pos: int) -> None:
        kls = self._block_class(
            dpkt.pcapng.InterfaceDescriptionBlockLE, dpkt.pcapng.InterfaceDescriptionBlock
        )
        self.interfaces.append(_interface(self._parse(kls, block, pos)))

    def _parse(self, kls, block: bytes, pos: int):
        """Parse a header block with dpkt, mapping its errors to TraceError."""
        try:
            return kls(block)
        except (dpkt.dpkt.Error, struct.error, ValueError, UnicodeDecodeError) as exc:
            raise self.fail(f"corrupt {kls.__name__} at byte {pos}: {exc!r}") from exc

    def _enhanced_packet(self, block: bytes, pos: int) -> None:
        if len(block) < _EPB_MIN:
            raise self.fail(f"truncated packet block at byte {pos}")
        _, _, iface, high, low, caplen, origlen = struct.unpack_from(
            self.order + _EPB_HEAD.format[1:], block
        )
        self._packet(block, pos, _EPB_MIN - 4, iface, (high << 32) | low, caplen, origlen)

    def _obsolete_packet(self, block: bytes, pos: int) -> None:
        kls = dpkt.pcapng.PacketBlockLE
        if len(block) < kls.__hdr_len__:
            raise self.fail(f"truncated packet block at byte {pos}")
        fmt = self.order + kls.__hdr_fmt__[1:]
        _, _, iface, _, high, low, caplen, origlen, _ = struct.unpack_from(fmt, block)
        self._packet(block, pos, kls.__hdr_len__ - 4, iface, (high << 32) | low, caplen, origlen)

    def _simple_packet(self, block: bytes, pos: int) -> None:
        raise self.fail("Simple Packet Blocks carry no timestamp; not supported")

    def _packet(self, block, pos, start, iface, ticks, caplen, origlen) -> None:
        """Validate one packet's fields and append it."""
        if iface >= len(self.interfaces):
            raise self.fail(f"interface id {iface} has no Interface Description Block")
        info = self.interfaces[iface]
        if info.linktype != dpkt.pcap.DLT_EN10MB:
            raise self.fail(f"interface {iface} has linktype {info.linktype}, not Ethernet (1)")
        if start + caplen > len(block) - 4:
            raise self.fail(f"truncated packet: {caplen} bytes do not fit its block at byte {pos}")
        if not 0 < caplen <= _MAX_PACKET:
            raise self.fail(f"length {caplen} not in 1..{_MAX_PACKET}")
        if caplen < origlen:
            raise self.fail(f"truncated packet: only {caplen} of {origlen} bytes captured")
        time_ns = ticks * info.scale_num // info.scale_den + info.offset_ns
        if not 0 <= time_ns < 1 << 64:  # a negative or huge if_tsoffset
            raise self.fail(f"time {time_ns} ns (interface {iface}'s if_tsoffset "
                            f"{info.offset_ns // _NS} s) is not in 0..2^64-1 ns")
        self.packets.append(TracePacket(iface, time_ns, block[start : start + caplen]))

    _HANDLERS = {
        dpkt.pcapng.PCAPNG_BT_SHB: _section,
        dpkt.pcapng.PCAPNG_BT_IDB: _interface_block,
        dpkt.pcapng.PCAPNG_BT_EPB: _enhanced_packet,
        dpkt.pcapng.PCAPNG_BT_PB: _obsolete_packet,
        dpkt.pcapng.PCAPNG_BT_SPB: _simple_packet,
    }


# --- classic pcap reading -----------------------------------------------------

_PCAP_NANO = (dpkt.pcap.TCPDUMP_MAGIC_NANO, dpkt.pcap.PMUDPCT_MAGIC_NANO)


def _pcap_magic(buf: bytes) -> int | None:
    """The pcap magic of `buf` as dpkt names it, or None if it is not pcap."""
    (magic,) = struct.unpack_from(">I", buf)
    return magic if magic in dpkt.pcap.MAGIC_TO_PKT_HDR else None


def _packet_error(path: Path, index: int, what: str) -> TraceError:
    return TraceError(f"{path}: packet {index}: {what}")


def _read_pcap(path: Path, buf: bytes) -> list[TracePacket]:
    """Packets of a classic pcap file, all on device 0."""
    magic = _pcap_magic(buf)
    file_kls = dpkt.pcap.FileHdr if magic in _BIG_ENDIAN_PCAP else dpkt.pcap.LEFileHdr
    if len(buf) < file_kls.__hdr_len__:
        raise TraceError(f"{path}: packet 0: truncated pcap file header")
    header = file_kls(buf[: file_kls.__hdr_len__])
    record = struct.Struct(dpkt.pcap.MAGIC_TO_PKT_HDR[magic].__hdr_fmt__)
    frac_ns = 1 if magic in _PCAP_NANO else 1000
    packets: list[TracePacket] = []
    pos = file_kls.__hdr_len__
    while pos < len(buf):
        fail = partial(_packet_error, path, len(packets))
        if len(buf) - pos < record.size:
            raise fail(f"truncated packet header at byte {pos}")
        sec, frac, caplen, origlen = record.unpack_from(buf, pos)[:4]
        pos += record.size
        if header.linktype != dpkt.pcap.DLT_EN10MB:
            raise fail(f"linktype {header.linktype}, not Ethernet (1)")
        if pos + caplen > len(buf):
            raise fail(f"truncated packet: {caplen} bytes, file has {len(buf) - pos}")
        if not 0 < caplen <= _MAX_PACKET:
            raise fail(f"length {caplen} not in 1..{_MAX_PACKET}")
        if caplen < origlen:
            raise fail(f"truncated packet: only {caplen} of {origlen} bytes captured")
        packets.append(TracePacket(0, sec * _NS + frac * frac_ns, buf[pos : pos + caplen]))
        pos += caplen
    return packets


_BIG_ENDIAN_PCAP = (
    dpkt.pcap.TCPDUMP_MAGIC,
    dpkt.pcap.TCPDUMP_MAGIC_NANO,
    dpkt.pcap.MODPCAP_MAGIC,
)
