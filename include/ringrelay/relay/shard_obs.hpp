// ShardObs: a shard's handles on the metrics block and the access-log ring it writes
// (owned by the server, which outlives every shard). Either may be null: that output
// is off. The handles are borrowed and may be used only by the shard's own thread
// (each block and ring has that one writer).
#pragma once

namespace rr::obs {
class ShardMetrics;
class AccessLogProducer;
}  // namespace rr::obs

namespace rr::relay {

struct ShardObs {
    obs::ShardMetrics* metrics = nullptr;   // null: metrics off
    obs::AccessLogProducer* log = nullptr;  // null: access log off
};

}  // namespace rr::relay
