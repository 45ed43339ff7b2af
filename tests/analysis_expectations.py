"""What the analysis must find in each sample NF, written from the NFs' specs.

Each entry gives:
  objects    name -> kind, exactly the objects nf_init allocates;
  read_only  objects packets never write (replicable);
  accesses   (object, op, device, key) that must be reported: the access's
             devices include `device` and its key fields equal `key`;
  absent     (object, op, device) that must NOT be reported;
  relations  (object, (device a, device b), {(field on a, field on b)})
             pairs that a relation between those devices must include.
"""

FIVE_TUPLE = ["ipv4.src", "ipv4.dst", "l4.sport", "l4.dport", "ipv4.proto"]
REVERSED_FIVE_TUPLE = ["ipv4.dst", "ipv4.src", "l4.dport", "l4.sport", "ipv4.proto"]
REVERSED_PAIRS = {("ipv4.src", "ipv4.dst"), ("ipv4.dst", "ipv4.src"),
                  ("l4.sport", "l4.dport"), ("l4.dport", "l4.sport"), ("ipv4.proto", "ipv4.proto")}


def expiry(device_chain_vector_map, devices=(0, 1)):
    """The expire accesses of one expire_items_single_map call site."""
    return [(obj, "expire", d, []) for obj in device_chain_vector_map for d in devices]


EXPECTED = {
    "nop": dict(objects={}, read_only=[], accesses=[], absent=[], relations=[]),
    "sbridge": dict(
        # Static MAC table, filled by nf_init, looked up by destination MAC.
        objects={"table_map": "map", "table_entries": "vector"},
        read_only=["table_map", "table_entries"],
        accesses=[("table_map", "read", 0, ["eth.dst"]), ("table_map", "read", 1, ["eth.dst"]),
                  ("table_entries", "read", 0, ["table_map.value"])],
        absent=[("table_map", "write", 0), ("table_map", "write", 1)],
        relations=[],
    ),
    "bridge": dict(
        # Learns source MACs on every device, forwards by destination MAC.
        objects={"mac_map": "map", "mac_keys": "vector", "mac_devices": "vector",
                 "mac_chain": "dchain"},
        read_only=[],
        accesses=[("mac_map", "read", 0, ["eth.src"]), ("mac_map", "read", 1, ["eth.src"]),
                  ("mac_map", "write", 0, ["eth.src"]), ("mac_map", "write", 1, ["eth.src"]),
                  ("mac_map", "read", 0, ["eth.dst"]), ("mac_map", "read", 1, ["eth.dst"]),
                  ("mac_chain", "create", 0, ["mac_chain.index"]),
                  ("mac_chain", "update", 1, ["mac_map.value"]),
                  ("mac_devices", "read", 0, ["mac_map.value"]),
                  *expiry(["mac_map", "mac_keys", "mac_chain"])],
        absent=[],
        # The entry learned from one packet's source is read by another's destination.
        relations=[("mac_map", (0, 1), {("eth.src", "eth.dst")}),
                   ("mac_map", (0, 0), {("eth.dst", "eth.src")})],
    ),
    "pol": dict(
        # Token bucket per destination IP, on WAN packets only.
        objects={"dst_map": "map", "dst_keys": "vector", "dst_buckets": "vector",
                 "dst_chain": "dchain"},
        read_only=[],
        accesses=[("dst_map", "read", 1, ["ipv4.dst"]), ("dst_map", "write", 1, ["ipv4.dst"]),
                  ("dst_chain", "create", 1, ["dst_chain.index"]),
                  ("dst_buckets", "write", 1, ["dst_map.value"]),
                  ("dst_buckets", "write", 1, ["dst_chain.index"]),
                  *expiry(["dst_map", "dst_keys", "dst_chain"])],
        absent=[("dst_map", "read", 0), ("dst_map", "write", 0), ("dst_buckets", "write", 0)],
        relations=[],
    ),
    "fw": dict(
        objects={"flow_map": "map", "flow_keys": "vector", "flow_chain": "dchain"},
        read_only=[],
        accesses=[("flow_map", "read", 0, FIVE_TUPLE), ("flow_map", "write", 0, FIVE_TUPLE),
                  ("flow_map", "read", 1, REVERSED_FIVE_TUPLE),
                  ("flow_chain", "create", 0, ["flow_chain.index"]),
                  ("flow_chain", "update", 0, ["flow_map.value"]),
                  ("flow_chain", "update", 1, ["flow_map.value"]),
                  ("flow_keys", "write", 0, ["flow_chain.index"]),
                  *expiry(["flow_map", "flow_keys", "flow_chain"])],
        # WAN packets never open flows.
        absent=[("flow_map", "write", 1), ("flow_chain", "create", 1)],
        relations=[("flow_map", (0, 1), REVERSED_PAIRS)],
    ),
    "nat": dict(
        objects={"flow_map": "map", "flow_keys": "vector", "flow_chain": "dchain"},
        read_only=[],
        accesses=[("flow_map", "read", 0, FIVE_TUPLE), ("flow_map", "write", 0, FIVE_TUPLE),
                  ("flow_chain", "create", 0, ["flow_chain.index"]),
                  ("flow_keys", "write", 0, ["flow_chain.index"]),
                  # WAN: the external port names the flow's index.
                  ("flow_chain", "verify", 1, ["l4.dport~offset"]),
                  ("flow_keys", "read", 1, ["l4.dport~offset"]),
                  ("flow_chain", "update", 1, ["l4.dport~offset"]),
                  *expiry(["flow_map", "flow_keys", "flow_chain"])],
        absent=[("flow_map", "read", 1), ("flow_map", "write", 1), ("flow_chain", "create", 1)],
        # The WAN reply comes from the flow's destination address and port.
        relations=[("flow_keys", (0, 1), {("ipv4.dst", "ipv4.src"), ("l4.dport", "l4.sport")})],
    ),
    "cl": dict(
        objects={"flow_map": "map", "flow_keys": "vector", "flow_chain": "dchain",
                 "pair_sketch": "sketch"},
        read_only=[],
        accesses=[("flow_map", "read", 0, FIVE_TUPLE), ("flow_map", "write", 0, FIVE_TUPLE),
                  ("pair_sketch", "read", 0, ["ipv4.src", "ipv4.dst"]),
                  ("pair_sketch", "write", 0, ["ipv4.src", "ipv4.dst"]),
                  ("pair_sketch", "update", 0, ["ipv4.src", "ipv4.dst"]),
                  ("pair_sketch", "expire", 0, []),
                  *expiry(["flow_map", "flow_keys", "flow_chain"])],
        absent=[("flow_map", "read", 1), ("pair_sketch", "write", 1)],
        relations=[],
    ),
    "psd": dict(
        objects={"src_map": "map", "src_keys": "vector", "src_counts": "vector",
                 "src_chain": "dchain", "port_map": "map", "port_keys": "vector",
                 "port_chain": "dchain"},
        read_only=[],
        accesses=[("src_map", "read", 1, ["ipv4.src"]), ("src_map", "write", 1, ["ipv4.src"]),
                  ("port_map", "read", 1, ["ipv4.src", "l4.dport"]),
                  ("port_map", "write", 1, ["ipv4.src", "l4.dport"]),
                  ("src_counts", "write", 1, ["src_map.value"]),
                  *expiry(["src_map", "src_keys", "src_chain"]),
                  *expiry(["port_map", "port_keys", "port_chain"])],
        absent=[("src_map", "read", 0), ("port_map", "write", 0)],
        relations=[],
    ),
    "lb": dict(
        objects={"flow_map": "map", "flow_keys": "vector", "flow_backends": "vector",
                 "flow_chain": "dchain", "backend_map": "map", "backend_ips": "vector",
                 "backends": "vector", "backend_chain": "dchain", "cht": "cht"},
        read_only=["cht"],
        accesses=[
            # Heartbeats on the backend device (0) register backends by source IP.
            ("backend_map", "read", 0, ["ipv4.src"]), ("backend_map", "write", 0, ["ipv4.src"]),
            ("backend_chain", "create", 0, ["backend_chain.index"]),
            ("backends", "write", 0, ["backend_chain.index"]),
            # Client flows on device 1, pinned by 5-tuple; new ones go through the cht.
            ("flow_map", "read", 1, FIVE_TUPLE), ("flow_map", "write", 1, FIVE_TUPLE),
            ("cht", "read", 1, [f"{f}~hash" for f in sorted(FIVE_TUPLE)]),
            ("backends", "read", 1, ["backend_chain.chosen"]),
            ("flow_backends", "write", 1, ["flow_map.value"]),
        ],
        absent=[("flow_map", "write", 0), ("backends", "write", 1), ("backend_map", "write", 1)],
        relations=[],
    ),
    "hhh": dict(
        objects={f"prefix{n}_{suffix}": kind for n in (16, 24, 32)
                 for suffix, kind in (("map", "map"), ("keys", "vector"),
                                      ("counters", "vector"), ("chain", "dchain"))},
        read_only=[],
        accesses=[
            ("prefix16_map", "read", 1, ["ipv4.src/16", "const:0x0000"]),
            ("prefix24_map", "read", 1, ["ipv4.src/24", "const:0x00"]),
            ("prefix32_map", "read", 1, ["ipv4.src"]),
            ("prefix16_map", "write", 1, ["ipv4.src/16", "const:0x0000"]),
            ("prefix24_map", "write", 1, ["ipv4.src/24", "const:0x00"]),
            ("prefix32_map", "write", 1, ["ipv4.src"]),
            ("prefix16_counters", "write", 1, ["prefix16_map.value"]),
        ],
        absent=[("prefix16_map", "read", 0), ("prefix32_map", "write", 0)],
        relations=[],
    ),
}
