// Stage 7, the channel: of those serving the key's group and the model, the usable
// ones (enabled, circuit closed, below max_concurrency, not tried yet for this
// request) by priority, then weight; its slot is taken here.
#include <algorithm>
#include <array>

#include "path.hpp"
#include "ringrelay/common.hpp"
#include "ringrelay/gateway/channel_pick.hpp"

namespace rr::gateway {
namespace {

constexpr std::size_t kMaxCandidates = 64;

bool was_tried(const std::vector<std::string>& tried, std::string_view id) {
    return std::find(tried.begin(), tried.end(), id) != tried.end();
}

void fill_choice(ChannelChoice& c, const store::ChannelView& v, std::string_view model) {
    c.id.assign(v.id());
    c.base_url.assign(v.base_url());
    c.credential_header.assign(v.type() == store::ChannelType::anthropic ? "x-api-key: " : "Authorization: Bearer ");
    c.credential_header.append(v.api_key()).append("\r\n");
    c.upstream_model.assign(v.model_map().map(model));
    c.updated_at_ms = v.updated_at_ms();
    c.timeout_ms = v.timeout_ms();
    c.first_byte_timeout_ms = v.first_byte_timeout_ms();
    c.pass_headers = v.pass_headers();
    // Anthropic streams always carry usage; OpenAI's only when asked.
    c.inject_usage = v.inject_usage() && v.type() == store::ChannelType::openai;
}

// Sticky hits and moves of sessions: their ratio is how often a session found its
// upstream prompt cache where it left it.
void count_session_pick(GatewayRequest& req, bool home) noexcept {
    if (obs::ShardMetrics* m = req.shard.obs().metrics) m->count_session_pick(home);
}

// The first n views, less the channels that do not speak OpenAI's API (the Responses
// API is OpenAI's: an anthropic channel knows no response id). Returns how many are left.
std::size_t keep_openai(std::span<store::ChannelView> views, std::size_t n) noexcept {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (views[i].type() == store::ChannelType::openai) views[kept++] = views[i];
    return kept;
}

// The channels this request may go to: the one that created its response (pinned), or
// for a by-id request of an unknown response any of the key's group, else those of
// (group, model). Returns how many (at most views.size()).
std::size_t list_candidates(GatewayRequest& req, std::span<store::ChannelView> views) {
    store::Reader& reader = req.sg.reader();
    if (!req.pinned_channel.empty()) {
        views[0] = reader.channel_by_id(req.pinned_channel);
        return views[0].valid() ? 1 : 0;
    }
    if (req.route == Route::response_by_id) return keep_openai(views, reader.channels_in_group(req.key.group, views));
    return std::min(reader.channels_for(req.key.group, req.fields.model, views), views.size());
}

}  // namespace

Pick pick_channel_for(GatewayRequest& req, const std::vector<std::string>& tried) {
    ShardGateway& sg = req.sg;
    const std::string& model = req.fields.model;
    Pick pick;
    store::ReadScope scope(sg.reader());
    if (!scope.ok()) return pick;
    std::array<store::ChannelView, kMaxCandidates> views;
    const std::size_t n = list_candidates(req, views);
    if (n == 0) {
        pick.kind = Pick::not_found;
        return pick;
    }
    const std::int64_t now = now_unix_ms();
    std::array<Candidate, kMaxCandidates> cands;
    std::array<ChannelBoard::State*, kMaxCandidates> states;
    for (std::size_t i = 0; i < n; ++i) {
        const store::ChannelView& v = views[i];
        states[i] = &sg.channel_state(v.id());
        cands[i].priority = v.priority();
        cands[i].weight = v.weight();
        cands[i].usable = v.enabled() && !ChannelBoard::circuit_open(*states[i], now) &&
                          !ChannelBoard::saturated(*states[i], v.max_concurrency()) && !was_tried(tried, v.id());
        cands[i].enabled = v.enabled();
        if (req.session != 0) cands[i].affinity = affinity_of(req.session, v.id());
    }
    const std::span<Candidate> span(cands.data(), n);
    for (;;) {  // a slot lost to another shard between check and take: pick again
        const int i = req.session != 0 ? pick_channel_for_session(span) : pick_channel(span, sg.random());
        if (i == kNoChannel) return pick;
        pick.slot = ChannelSlot::try_enter(*states[i], views[i].max_concurrency());
        if (!pick.slot.holds()) {
            cands[i].usable = false;
            continue;
        }
        fill_choice(pick.channel, views[i], model);
        if (req.session != 0) count_session_pick(req, i == home_channel(span));
        pick.channel.state = states[i];
        pick.kind = Pick::chosen;
        pick.others_usable = count_usable(span) > 1;
        return pick;
    }
}

// No channel serves the model (not_found), every one that does is disabled or
// open-circuit (none_usable), or one may take it (chosen). Saturation is not judged:
// slots are taken only after the token, and in-flight requests give theirs back
// before their token. Read only on the slow paths (no token at once).
Pick::Kind channel_outlook(GatewayRequest& req) {
    ShardGateway& sg = req.sg;
    store::ReadScope scope(sg.reader());
    if (!scope.ok()) return Pick::none_usable;
    std::array<store::ChannelView, kMaxCandidates> views;
    const std::size_t n = list_candidates(req, views);
    if (n == 0) return Pick::not_found;
    const std::int64_t now = now_unix_ms();
    for (std::size_t i = 0; i < n; ++i)
        if (views[i].enabled() && !ChannelBoard::circuit_open(sg.channel_state(views[i].id()), now)) return Pick::chosen;
    return Pick::none_usable;
}

Outcome refuse_pick(GatewayRequest& req, Pick::Kind kind) {
    if (req.route == Route::response_by_id) {
        if (kind == Pick::not_found) return req.reject_with(404, "model_not_found", "no channel serves group " + req.key.group);
        return req.reject_with(503, "no_available_channel", "no available channel for response " + req.response_id);
    }
    const std::string& model = req.fields.model;
    if (kind == Pick::not_found) return req.reject_with(404, "model_not_found", "no channel serves model " + model);
    return req.reject_with(503, "no_available_channel", "no available channel for model " + model);
}

}  // namespace rr::gateway
