# Signed policy bundles: what the policy authority ships to govmesh decision points.
#
# A bundle file is one SignedBundle message (unpacked Cap'n Proto, standard segment framing).
# `content` holds a serialized Bundle message; `digest` is SHA-256 over exactly those bytes;
# `signature` is Ed25519 (RFC 8032, pure) by the authority's key over the 22-byte context label
# "govmesh policy bundle\0" followed by the 32-byte digest. The label keeps a bundle signature
# from being mistaken for anything else the same key might sign.
#
# Readers check the envelope before touching `content`: format version, digest, signature
# against a trusted key. A bundle whose signature is empty is unsigned (`govmesh compile`
# writes those; `govmesh sign` fills in the signature) and is refused by the loader.
#
# Compatibility: fields are only ever appended. A change that an older govmesh would
# misread bumps the format version (engine/bundle.h kBundleFormatVersion), which older
# readers refuse by name.
@0x88e2b779413c9d04;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("govmesh::engine::wire");

struct SignedBundle {
  formatVersion @0 :UInt64;     # 64 bits so that the struct has no padding bytes to tamper with
  content @1 :Data;             # a serialized Bundle
  digest @2 :Data;              # SHA-256(content), 32 bytes
  signature @3 :Data;           # 64 bytes, or empty when unsigned
  signerPublicKey @4 :Data;     # raw Ed25519 key, 32 bytes, or empty when unsigned
}

struct Bundle {
  formatVersion @0 :UInt32;     # repeats the envelope's, under the signature
  revision @1 :UInt64;          # strictly increasing per authority
  issuedAtMs @2 :Int64;         # Unix ms
  freshUntilMs @3 :Int64;       # Unix ms: decision points must not use the bundle after this
  policyText @4 :Text;          # the Cedar source of every policy and template
  policyFileName @5 :Text;      # where it came from (error messages name it)
  links @6 :List(TemplateLink);
  hasSchema @7 :Bool;
  schemaIsJson @8 :Bool;
  schemaText @9 :Text;
  entitiesJson @10 :Text;       # the entity store as Cedar entities JSON (explicit escapes)
  keys @11 :List(WorkloadKey);
  table @12 :DecisionTable;
}

struct Uid {
  type @0 :Text;
  id @1 :Text;
}

struct TemplateLink {
  id @0 :Text;
  templateId @1 :Text;
  hasPrincipal @2 :Bool;
  hasResource @3 :Bool;
  principal @4 :Uid;
  resource @5 :Uid;
}

# A workload signing key: requests signed with it may act as `principal` only.
struct WorkloadKey {
  keyId @0 :Text;
  publicKey @1 :Data;           # raw Ed25519, 32 bytes
  principal @2 :Uid;
  hasNotAfter @3 :Bool;
  notAfterMs @4 :Int64;         # Unix ms
}

# compiler/decision_table.h, field for field; maps are parallel key and value lists.
struct DecisionTable {
  policyCount @0 :UInt32;
  words @1 :UInt32;
  policyIds @2 :List(Text);     # bit i is the policy with policyIds[i]
  permitMask @3 :List(UInt64);
  forbidMask @4 :List(UInt64);
  entities @5 :List(Uid);       # entity index -> uid
  features @6 :List(Feature);
}

enum FeatureKind {
  principal @0;
  action @1;
  resource @2;
  context @3;
  derived @4;
}

struct Feature {
  kind @0 :FeatureKind;
  path @1 :List(Text);
  atomText @2 :Text;
  valueKeys @3 :List(Text);
  valueRows @4 :List(UInt32);
  otherRow @5 :UInt32;
  errorRow @6 :UInt32;
  entityRows @7 :List(UInt32);
  unknownTypes @8 :List(Text);
  unknownTypeRows @9 :List(UInt32);
  unknownAnyTypeRow @10 :UInt32;
  rowCount @11 :UInt32;
  rows @12 :List(UInt64);       # rowCount x 3 x words
}
