# The decision service's wire protocol: Cap'n Proto RPC between workloads and a govmesh node.
#
# One call carries a batch: authorize() takes N requests and returns N decisions, in order, so
# that the RPC cost is amortized (ARCHITECTURE.md, performance model). Every request is answered:
# a request that cannot be read, verified or evaluated gets a deny with a denyCode, never an
# error for the whole call, and never an allow (fail closed, ARCHITECTURE.md decision 8).
#
# Signatures: a Request's `signature` is Ed25519 (RFC 8032, pure) by the workload key `keyId`
# over the request's canonical signing bytes (engine/request.h documents them byte for byte).
# They are computed from the decoded request, not from these wire bytes: entity references are
# signed as their type and id text even when sent interned, the context by its values (record
# keys sorted, sets in canonical order), the payload by its SHA-256. So any Cap'n Proto encoding
# of the same request verifies, and one interned against a different bundle revision (which may
# map an index to another entity) fails its signature instead of being misread.
#
# Compatibility: fields and union members are only ever appended. A reader meeting a union
# member newer than itself treats the request as MALFORMED (it cannot know what was signed).
@0xc7566b3efc1a673d;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("govmesh::server::wire");

interface Authorizer {
  # Decides a batch of requests: decisions[i] answers requests[i]. Never fails for bad requests
  # (each is denied with its own code); the call itself fails only on transport errors.
  authorize @0 (requests :List(Request)) -> (decisions :List(Decision));

  # The node's state: active bundle, backend, queue and counters.
  status @1 () -> (status :Status);

  # Offers a signed bundle file (the bytes `govmesh sign` writes). It replaces the active one
  # only if it verifies against the node's trusted authority keys and is newer; otherwise the
  # active bundle stays and `result` says why.
  loadBundle @2 (bundle :Data) -> (result :LoadResult);
}

# An entity: its uid as text, or its index in the active bundle's entity table (the bundle's
# DecisionTable.entities, engine/bundle.capnp), which spares the node hashing strings. An unset
# reference (the default) is MALFORMED.
struct EntityRef {
  union {
    unset @0 :Void;
    uid :group {
      type @1 :Text;            # fully qualified, components joined by "::", e.g. "Acme::User"
      id @2 :Text;              # any UTF-8, NUL included
    }
    interned @3 :UInt32;        # an index into the active bundle's entity table
  }
}

# A Cedar value, by kind. An unset value (the default) is MALFORMED.
struct Value {
  union {
    unset @0 :Void;
    boolean @1 :Bool;
    long @2 :Int64;
    string @3 :Text;
    entity @4 :EntityRef;
    set @5 :List(Value);        # any order, duplicates allowed (sets are unordered and merged)
    record @6 :List(Field);     # any order; a key may appear only once (MALFORMED otherwise)
    extension @7 :Extension;
  }
}

# One field of a record.
struct Field {
  name @0 :Text;
  value @1 :Value;
}

# An extension value as its Cedar constructor call: name is "decimal", "ip", "datetime" or
# "duration", argument the constructor's string argument, e.g. ("ip", "10.0.0.0/8"),
# ("datetime", "2026-01-02T03:04:05.000Z"), ("duration", "90000ms"), ("decimal", "1.5000").
struct Extension {
  name @0 :Text;
  argument @1 :Text;
}

# One request. Text fields are UTF-8; sizes are bounded by engine/request.h (kMaxPayloadBytes,
# kMaxContextBytes, kMaxContextDepth, kMaxNameBytes).
struct Request {
  principal @0 :EntityRef;
  action @1 :EntityRef;
  resource @2 :EntityRef;
  context @3 :Value;            # a record; absent means the empty record
  keyId @4 :Text;               # a workload key of the active bundle
  timestampNs @5 :Int64;        # Unix ns when the client signed; must be within the node's window
  nonce @6 :Data;               # exactly 16 bytes, unique per key within the window
  payload @7 :Data;             # optional (absent pointer = not carried): the action's payload
  payloadDigest @8 :Data;       # optional, 32 bytes: SHA-256(payload). With both, they must match.
  signature @9 :Data;           # exactly 64 bytes: Ed25519 over the canonical signing bytes
}

# The answer to one request.
struct Decision {
  allow @0 :Bool;               # true only when denyCode is 0 and the policies allow
  reasons @1 :List(Text);       # ids of the determining policies (permits when allowed, forbids when denied)
  errors @2 :List(Text);        # policy evaluation errors, "policyId: message"
  denyCode @3 :UInt8;           # engine/deny_code.h DenyCode: 0 NONE (evaluated by the policies),
                                # 1 MALFORMED, 2 UNKNOWN_KEY, 3 KEY_NOT_PRINCIPAL, 4 BAD_SIGNATURE,
                                # 5 PAYLOAD_DIGEST_MISMATCH, 6 TIMESTAMP_OUT_OF_WINDOW,
                                # 7 REPLAYED_NONCE, 8 NO_BUNDLE, 9 POLICY_STALE, 10 OVERLOADED,
                                # 11 BACKEND_FAULT, 12 SHUTTING_DOWN, 13 LINEAGE_UNAVAILABLE.
                                # Values are stable; a reader treats any nonzero code as a deny,
                                # including codes newer than itself.
  denyName @4 :Text;            # optional: the code's name as above, for people reading dumps;
                                # readers go by denyCode
  lineageSeq @5 :UInt64;        # the decision's lineage record; 0 until lineage lands
}

# How many decisions carried one deny code.
struct CodeCount {
  code @0 :UInt8;               # a DenyCode value, as in Decision.denyCode
  count @1 :UInt64;
}

# The node's state, as status() reports it.
struct Status {
  hasBundle @0 :Bool;           # false until a verified bundle is active (then every request is NO_BUNDLE)
  bundleRevision @1 :UInt64;
  bundleDigest @2 :Data;        # SHA-256 of the active bundle's content (the digest its signature covers)
  bundleDeadlineMs @3 :Int64;   # Unix ms: the bundle's freshness deadline (POLICY_STALE from then on)
  secondsToDeadline @4 :Float64;# negative once past
  backend @5 :Text;             # the table-evaluation backend in use: cuda, avx512, avx2, scalar
  queueDepth @6 :UInt64;        # requests admitted and not yet answered
  decisions @7 :UInt64;         # requests answered since start
  allowed @8 :UInt64;
  deniedByCode @9 :List(CodeCount);  # denies by code (code 0: denied by the policies); zero counts may be left out
  nodeId @10 :Text;             # the node's name (its lineage key fingerprint once lineage lands)
  signatureBackend @11 :Text;   # the Ed25519 verification backend in use
}

# Why loadBundle() refused a bundle.
enum LoadRefusal {
  none @0;                      # accepted
  malformed @1;                 # not a bundle file, a format this node does not read, or content that does not decode
  unsigned @2;                  # no signature
  untrustedSigner @3;           # signed by a key the node does not trust
  badSignature @4;              # the signature does not verify
  digestMismatch @5;            # the content does not hash to the signed digest (tampered)
  notNewer @6;                  # its revision is not above the active one's
  stale @7;                     # already past its freshness deadline
  tooLarge @8;                  # larger than the node accepts
  unavailable @9;               # the node is shutting down, or reloads are disabled
}

# The outcome of loadBundle().
struct LoadResult {
  ok @0 :Bool;                  # true when the offered bundle is now the active one
  revision @1 :UInt64;          # the active revision after the call (the old one when refused)
  error @2 :Text;               # why it was refused, for people
  refusal @3 :LoadRefusal;      # why it was refused, for programs
}
