"""Kinsight wire protocol: every number both ends of the link agree on.

This one module is imported unchanged by the MicroPython firmware and by the
CPython host library. ``frames.cddl`` beside it is the normative description of
the frames; the test suite checks that the two agree, so change both together
and bump PROTOCOL_VERSION when an old peer could misread a new frame.

A frame is the CBOR array ``[kind, header, body, tag]``:

* ``kind``   one of the KIND_* numbers, which fixes the shape of ``body``;
* ``header`` a map with the H_* keys;
* ``body``   a map whose keys depend on the kind (EV_*, SM_*, ST_*, FR_*, ACK_*, UG_*,
  UP_*);
* ``tag``    HMAC-SHA256 under the node's key, truncated to TAG_LEN bytes, of
  every byte of the frame that precedes the tag item.

All values are integers, text or bytes: quantities are scaled integers whose
unit is in the name (``_ms``, ``_ds`` for deciseconds, ``_ml``, ``_mv``).
"""

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:  # CPython host

    def const(value):
        return value


PROTOCOL_VERSION = const(1)

# Limits shared by both ends.
MTU_DEFAULT = const(250)  # ESP-NOW payload limit: no frame on the air is larger
TAG_LEN = const(8)  # HMAC-SHA256 truncated to 64 bits, as COSE "HMAC 256/64"
TAG_ITEM_HEAD = const(0x48)  # CBOR head of an 8-byte byte string
TAG_ITEM_LEN = const(9)  # head + tag: the last bytes of every frame
FRAME_ITEMS = const(4)  # [kind, header, body, tag]
MAX_TEXT_BYTES = const(64)
MAX_LIST_ITEMS = const(64)  # events or summaries in one message
MAX_FRAGMENTS = const(32)  # fragments of one message
MAX_MESSAGE_BYTES = const(4096)  # a reassembled message
MAX_DEPTH = const(4)  # frame array > body map > list > item map
# Bytes of a fragment frame besides its chunk when every integer is at its
# largest and the chunk's head takes 3 bytes. Every fragment of a message but
# the last carries exactly mtu - FRAGMENT_OVERHEAD bytes, so both ends cut a
# message the same way whatever the header values.
FRAGMENT_OVERHEAD = const(55)
# Firmware updates: a bundle is fetched in pieces of at most UPDATE_PIECE_BYTES (a
# piece frame with every integer at its largest then fits MTU_DEFAULT), at most
# MAX_UPDATE_PIECES of them answering one request.
UPDATE_PIECE_BYTES = const(192)
MAX_UPDATE_PIECES = const(8)
MAX_BUNDLE_BYTES = const(1048576)
BUNDLE_NAME_MAX = const(32)  # bytes of a module's file name in a bundle
# A bundle: BUNDLE_MAGIC, then per file: its name's length (1 byte), the name (ASCII),
# its length (4 bytes, big-endian) and its bytes; nothing after the last file. The
# whole bundle's SHA-256 is what the host's offer names.
BUNDLE_MAGIC = b"KSB1"

# Frame kinds.
KIND_EVENTS = const(1)
KIND_SUMMARY = const(2)
KIND_STATUS = const(3)
KIND_FRAGMENT = const(4)
KIND_ACK = const(5)
KIND_UPDATE_GET = const(6)  # node to host: pieces of a firmware bundle, please
KIND_UPDATE_PIECE = const(7)  # host to node: one piece, under the node's key

# Header keys.
H_VERSION = const(1)
H_NODE = const(2)
H_BOOT = const(3)  # boot count, persisted on the node, +1 each start
H_SEQ = const(4)  # restarts at 0 each boot: (boot, seq) never repeats
H_TIME_S = const(5)  # node clock, seconds since 1970-01-01 UTC

# Event batch body: {B_EVENTS: [event, ...]}.
B_EVENTS = const(1)
EV_TYPE = const(1)
EV_ROLE = const(2)
EV_AGO_DS = const(3)  # start of the event, deciseconds before H_TIME_S
EV_DURATION_DS = const(4)
EV_VOLUME_ML = const(5)
EV_PEAK_FLOW_ML_MIN = const(6)
EV_RISE_DS = const(7)  # sit-to-stand: how long the load took to come off
EV_RESTLESS = const(8)  # movements counted during the episode
EV_HR_BPM = const(9)  # heart rate: the mean rate of a very high or very low run

# Interval summary body: {B_SUMMARIES: [summary, ...]}.
B_SUMMARIES = const(1)
SM_ROLE = const(1)
SM_AGO_S = const(2)  # end of the interval, seconds before H_TIME_S
SM_PERIOD_S = const(3)
SM_OCCUPIED_DS = const(4)  # seat/bed occupied, or someone present
SM_EPISODES = const(5)  # sitting episodes, draws or visits
SM_VOLUME_ML = const(6)
SM_RESTLESS = const(7)
SM_RISE_DS_MAX = const(8)
SM_DWELL_DS_MAX = const(9)
SM_FAULTS = const(10)
SM_HR_REST_BPM = const(11)  # median rate of the calm minutes
SM_HR_MEAN_BPM = const(12)  # mean rate of the minutes worn
SM_HR_WEAR_S = const(13)  # time the wearable was on the skin
SM_HR_QUALITY_PM = const(14)  # measurements received per mille of those expected while worn

# Node status body.
ST_FIRMWARE = const(1)
ST_UPTIME_S = const(2)
ST_RESET_CAUSE = const(3)
ST_FREE_HEAP = const(4)
ST_LARGEST_BLOCK = const(5)
ST_QUEUE_DEPTH = const(6)
ST_SENT = const(7)
ST_ACKED = const(8)
ST_DROPPED = const(9)
ST_RSSI_DBM = const(10)
ST_SUPPLY_MV = const(11)
ST_CONFIG_ERROR = const(12)
ST_SAFE_MODE = const(13)
ST_CRASHES = const(14)  # crash records since the last status that told of them
ST_CRASH_TIME_S = const(15)  # the newest of them: when,
ST_CRASH_CAUSE = const(16)  # the reset cause of the boot it ended,
ST_CRASH_WHAT = const(17)  # and what (the exception's last line)
ST_BUNDLE = const(18)  # the firmware bundle running (absent: the board's own)
ST_BUNDLE_FAILED = const(19)  # the last bundle that failed to boot and was rolled back

# Fragment body: one piece of a frame too large for the MTU. The pieces,
# joined in index order, are that whole frame; FR_MSG is its sequence number.
FR_MSG = const(1)
FR_INDEX = const(2)
FR_COUNT = const(3)
FR_CHUNK = const(4)

# Ack body, host to node. H_BOOT/H_SEQ of an ack are the host's own counters.
ACK_BOOT = const(1)  # the node's boot count the ack is for
ACK_SEQ = const(2)  # the frame just stored
ACK_CONTIGUOUS = const(3)  # every seq 0..this of ACK_BOOT is stored
ACK_TIME_S = const(4)  # host clock, so a node can set its own
ACK_UPDATE_BUNDLE = const(5)  # a firmware bundle waits for this node: its id,
ACK_UPDATE_SIZE = const(6)  # its length in bytes
ACK_UPDATE_SHA256 = const(7)  # and its SHA-256 (32 bytes)

# Update request body (node to host) and piece body (host to node).
UG_BUNDLE = const(1)
UG_OFFSET = const(2)  # the first byte wanted: what the node has stored so far
UG_PIECES = const(3)  # 1..MAX_UPDATE_PIECES pieces from there
UP_BUNDLE = const(1)
UP_OFFSET = const(2)
UP_DATA = const(3)  # 1..UPDATE_PIECE_BYTES bytes of the bundle from UP_OFFSET

# Event types.
ET_SIT = const(1)
ET_SIT_TOO_LONG = const(2)
ET_IN_BED = const(3)
ET_OUT_OF_BED = const(4)
ET_DRAW = const(5)
ET_LEAK = const(6)
ET_VISIT = const(7)
ET_PROLONGED_PRESENCE = const(8)
ET_FLUSH = const(9)
ET_SENSOR_FAULT = const(10)
ET_HR_HIGH = const(11)  # a sustained very high heart rate (urgent)
ET_HR_LOW = const(12)  # a sustained very low heart rate (urgent)

# Sensor roles.
ROLE_SEAT = const(1)
ROLE_BED = const(2)
ROLE_TAP = const(3)
ROLE_TOILET = const(4)
ROLE_STAIRS = const(5)
ROLE_HEART_RATE = const(6)  # a wearable (BLE heart rate strap or watch)

# Reset causes (ST_RESET_CAUSE).
RESET_UNKNOWN = const(0)
RESET_POWER_ON = const(1)
RESET_HARD = const(2)
RESET_WATCHDOG = const(3)
RESET_DEEP_SLEEP = const(4)
RESET_SOFT = const(5)
RESET_BROWNOUT = const(6)

# Value types of the field tables below.
T_UINT = const(1)  # 0 .. U32_MAX
T_INT = const(2)  # I32_MIN .. I32_MAX
T_TEXT = const(3)  # UTF-8, at most MAX_TEXT_BYTES
T_BYTES = const(4)
T_LIST = const(5)  # 1 .. MAX_LIST_ITEMS maps of the item table
REQUIRED = const(1)
OPTIONAL = const(0)
U32_MAX = 0xFFFFFFFF
I32_MIN = -0x80000000
I32_MAX = 0x7FFFFFFF

# Field tables: (key, name, value type, REQUIRED/OPTIONAL). The names are the
# ones the host's records use.
HEADER_FIELDS = (
    (H_VERSION, "version", T_UINT, REQUIRED),
    (H_NODE, "node_id", T_UINT, REQUIRED),
    (H_BOOT, "boot", T_UINT, REQUIRED),
    (H_SEQ, "seq", T_UINT, REQUIRED),
    (H_TIME_S, "time_s", T_UINT, REQUIRED),
)
EVENT_FIELDS = (
    (EV_TYPE, "type", T_UINT, REQUIRED),
    (EV_ROLE, "role", T_UINT, REQUIRED),
    (EV_AGO_DS, "ago_ds", T_UINT, REQUIRED),
    (EV_DURATION_DS, "duration_ds", T_UINT, OPTIONAL),
    (EV_VOLUME_ML, "volume_ml", T_UINT, OPTIONAL),
    (EV_PEAK_FLOW_ML_MIN, "peak_flow_ml_min", T_UINT, OPTIONAL),
    (EV_RISE_DS, "rise_ds", T_UINT, OPTIONAL),
    (EV_RESTLESS, "restless", T_UINT, OPTIONAL),
    (EV_HR_BPM, "hr_bpm", T_UINT, OPTIONAL),
)
SUMMARY_FIELDS = (
    (SM_ROLE, "role", T_UINT, REQUIRED),
    (SM_AGO_S, "ago_s", T_UINT, REQUIRED),
    (SM_PERIOD_S, "period_s", T_UINT, REQUIRED),
    (SM_OCCUPIED_DS, "occupied_ds", T_UINT, OPTIONAL),
    (SM_EPISODES, "episodes", T_UINT, OPTIONAL),
    (SM_VOLUME_ML, "volume_ml", T_UINT, OPTIONAL),
    (SM_RESTLESS, "restless", T_UINT, OPTIONAL),
    (SM_RISE_DS_MAX, "rise_ds_max", T_UINT, OPTIONAL),
    (SM_DWELL_DS_MAX, "dwell_ds_max", T_UINT, OPTIONAL),
    (SM_FAULTS, "faults", T_UINT, OPTIONAL),
    (SM_HR_REST_BPM, "hr_rest_bpm", T_UINT, OPTIONAL),
    (SM_HR_MEAN_BPM, "hr_mean_bpm", T_UINT, OPTIONAL),
    (SM_HR_WEAR_S, "hr_wear_s", T_UINT, OPTIONAL),
    (SM_HR_QUALITY_PM, "hr_quality_pm", T_UINT, OPTIONAL),
)
EVENTS_BODY_FIELDS = ((B_EVENTS, "events", T_LIST, REQUIRED),)
SUMMARY_BODY_FIELDS = ((B_SUMMARIES, "summaries", T_LIST, REQUIRED),)
STATUS_FIELDS = (
    (ST_FIRMWARE, "firmware", T_TEXT, REQUIRED),
    (ST_UPTIME_S, "uptime_s", T_UINT, REQUIRED),
    (ST_RESET_CAUSE, "reset_cause", T_UINT, REQUIRED),
    (ST_FREE_HEAP, "free_heap", T_UINT, OPTIONAL),
    (ST_LARGEST_BLOCK, "largest_block", T_UINT, OPTIONAL),
    (ST_QUEUE_DEPTH, "queue_depth", T_UINT, OPTIONAL),
    (ST_SENT, "frames_sent", T_UINT, OPTIONAL),
    (ST_ACKED, "frames_acked", T_UINT, OPTIONAL),
    (ST_DROPPED, "frames_dropped", T_UINT, OPTIONAL),
    (ST_RSSI_DBM, "rssi_dbm", T_INT, OPTIONAL),
    (ST_SUPPLY_MV, "supply_mv", T_UINT, OPTIONAL),
    (ST_CONFIG_ERROR, "config_error", T_TEXT, OPTIONAL),
    (ST_SAFE_MODE, "safe_mode", T_UINT, OPTIONAL),
    (ST_CRASHES, "crashes", T_UINT, OPTIONAL),
    (ST_CRASH_TIME_S, "crash_time_s", T_UINT, OPTIONAL),
    (ST_CRASH_CAUSE, "crash_cause", T_UINT, OPTIONAL),
    (ST_CRASH_WHAT, "crash_what", T_TEXT, OPTIONAL),
    (ST_BUNDLE, "bundle", T_UINT, OPTIONAL),
    (ST_BUNDLE_FAILED, "bundle_failed", T_UINT, OPTIONAL),
)
FRAGMENT_FIELDS = (
    (FR_MSG, "msg", T_UINT, REQUIRED),
    (FR_INDEX, "index", T_UINT, REQUIRED),
    (FR_COUNT, "count", T_UINT, REQUIRED),
    (FR_CHUNK, "chunk", T_BYTES, REQUIRED),
)
ACK_FIELDS = (
    (ACK_BOOT, "acked_boot", T_UINT, REQUIRED),
    (ACK_SEQ, "acked_seq", T_UINT, REQUIRED),
    (ACK_CONTIGUOUS, "contiguous_seq", T_UINT, OPTIONAL),
    (ACK_TIME_S, "host_time_s", T_UINT, REQUIRED),
    (ACK_UPDATE_BUNDLE, "update_bundle", T_UINT, OPTIONAL),
    (ACK_UPDATE_SIZE, "update_size", T_UINT, OPTIONAL),
    (ACK_UPDATE_SHA256, "update_sha256", T_BYTES, OPTIONAL),
)
UPDATE_GET_FIELDS = (
    (UG_BUNDLE, "bundle", T_UINT, REQUIRED),
    (UG_OFFSET, "offset", T_UINT, REQUIRED),
    (UG_PIECES, "pieces", T_UINT, REQUIRED),
)
UPDATE_PIECE_FIELDS = (
    (UP_BUNDLE, "bundle", T_UINT, REQUIRED),
    (UP_OFFSET, "offset", T_UINT, REQUIRED),
    (UP_DATA, "data", T_BYTES, REQUIRED),
)

# (kind, name, body field table, item table for its T_LIST field or None)
KINDS = (
    (KIND_EVENTS, "events", EVENTS_BODY_FIELDS, EVENT_FIELDS),
    (KIND_SUMMARY, "summary", SUMMARY_BODY_FIELDS, SUMMARY_FIELDS),
    (KIND_STATUS, "status", STATUS_FIELDS, None),
    (KIND_FRAGMENT, "fragment", FRAGMENT_FIELDS, None),
    (KIND_ACK, "ack", ACK_FIELDS, None),
    (KIND_UPDATE_GET, "update_get", UPDATE_GET_FIELDS, None),
    (KIND_UPDATE_PIECE, "update_piece", UPDATE_PIECE_FIELDS, None),
)
EVENT_TYPES = (
    (ET_SIT, "sit"),
    (ET_SIT_TOO_LONG, "sit_too_long"),
    (ET_IN_BED, "in_bed"),
    (ET_OUT_OF_BED, "out_of_bed"),
    (ET_DRAW, "draw"),
    (ET_LEAK, "leak"),
    (ET_VISIT, "visit"),
    (ET_PROLONGED_PRESENCE, "prolonged_presence"),
    (ET_FLUSH, "flush"),
    (ET_SENSOR_FAULT, "sensor_fault"),
    (ET_HR_HIGH, "hr_high"),
    (ET_HR_LOW, "hr_low"),
)
ROLES = (
    (ROLE_SEAT, "seat"),
    (ROLE_BED, "bed"),
    (ROLE_TAP, "tap"),
    (ROLE_TOILET, "toilet"),
    (ROLE_STAIRS, "stairs"),
    (ROLE_HEART_RATE, "heart_rate"),
)
RESET_CAUSES = (
    (RESET_UNKNOWN, "unknown"),
    (RESET_POWER_ON, "power_on"),
    (RESET_HARD, "hard"),
    (RESET_WATCHDOG, "watchdog"),
    (RESET_DEEP_SLEEP, "deep_sleep"),
    (RESET_SOFT, "soft"),
    (RESET_BROWNOUT, "brownout"),
)
