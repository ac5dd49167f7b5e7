#include "ringrelay/gateway/request_body.hpp"

#include <algorithm>

namespace rr::gateway {

std::string_view describe(BodyError e) noexcept {
    switch (e) {
    case BodyError::none: return "ok";
    case BodyError::not_json: return "request body is not valid JSON";
    case BodyError::not_object: return "request body must be a JSON object";
    case BodyError::no_model: return "request body has no \"model\" field";
    case BodyError::model_not_string: return "\"model\" must be a non-empty string";
    case BodyError::duplicate_model: return "request body has more than one \"model\" field";
    }
    return "invalid request";
}

void pad_for_simdjson(std::string& body) {
    if (body.capacity() < body.size() + simdjson::SIMDJSON_PADDING) body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
}

namespace {

constexpr std::string_view kAskUsageMember = R"(,"stream_options":{"include_usage":true})";
constexpr std::string_view kAskUsageObject = R"({"include_usage":true})";
constexpr std::string_view kAskUsageFirst = R"("include_usage":true,)";
constexpr std::string_view kAskUsageOnly = R"("include_usage":true)";
constexpr std::string_view kTrue = "true";

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// A value's token in the body, without the whitespace On-Demand leaves after it.
std::string_view trimmed_token(simdjson::ondemand::value& value) {
    std::string_view raw = value.raw_json_token();
    while (!raw.empty() && is_space(raw.back())) raw.remove_suffix(1);
    return raw;
}

// "stream_options": null, {...} with include_usage true / false / absent. Any other
// shape is the upstream's to refuse: no edit is offered.
void read_stream_options(simdjson::ondemand::value& value, const std::string& body, RequestFields& out) {
    const std::string_view token = trimmed_token(value);
    const std::size_t at = static_cast<std::size_t>(token.data() - body.data());
    simdjson::ondemand::json_type type;
    if (value.type().get(type)) return;
    if (type == simdjson::ondemand::json_type::null) {
        out.ask_usage = BodyEdit{at, token.size(), kAskUsageObject};
        return;
    }
    simdjson::ondemand::object options;
    if (value.get_object().get(options)) return;
    std::size_t after = at + 1;
    while (after < body.size() && is_space(body[after])) ++after;
    const bool empty = after < body.size() && body[after] == '}';
    out.ask_usage = BodyEdit{at + 1, 0, empty ? kAskUsageOnly : kAskUsageFirst};
    for (auto field : options) {
        std::string_view key;
        if (field.unescaped_key().get(key)) {
            out.ask_usage.reset();
            return;
        }
        if (key != "include_usage") continue;
        simdjson::ondemand::value flag;
        bool asked = false;
        if (field.value().get(flag) || flag.get_bool().get(asked)) {
            out.ask_usage.reset();  // not a boolean: the upstream says what it thinks of it
            return;
        }
        out.usage_asked = asked;
        const std::string_view t = trimmed_token(flag);
        if (asked) out.ask_usage.reset();
        else out.ask_usage = BodyEdit{static_cast<std::size_t>(t.data() - body.data()), t.size(), kTrue};
    }
}

// Without stream_options: a new last member, before the object's closing brace.
void offer_new_member(const std::string& body, RequestFields& out) {
    std::size_t end = body.size();
    while (end > 0 && is_space(body[end - 1])) --end;
    if (end > 0 && body[end - 1] == '}') out.ask_usage = BodyEdit{end - 1, 0, kAskUsageMember};
}

// "metadata": {"user_id": "..."}; anything else in it, or another shape, is the
// upstream's to judge.
void read_metadata_user_id(simdjson::ondemand::value& value, RequestFields& out) {
    simdjson::ondemand::object metadata;
    if (value.get_object().get(metadata)) return;
    for (auto field : metadata) {
        std::string_view key;
        if (field.unescaped_key().get(key)) return;  // malformed: the outer loop reports it
        if (key != "user_id") continue;
        std::string_view id;
        if (!field.value().get_string().get(id)) out.metadata_user_id.assign(id);
    }
}

}  // namespace

RequestFields read_request_fields(simdjson::ondemand::parser& parser, std::string& body) {
    RequestFields out;
    pad_for_simdjson(body);
    simdjson::ondemand::document doc;
    if (parser.iterate(simdjson::padded_string_view(body.data(), body.size(), body.capacity())).get(doc)) {
        out.error = BodyError::not_json;
        return out;
    }
    simdjson::ondemand::object obj;
    if (doc.get_object().get(obj)) {
        out.error = BodyError::not_object;
        return out;
    }
    // One pass over the object's fields: model and stream may come in any order.
    bool have_model = false;
    bool have_options = false;
    for (auto field : obj) {
        std::string_view key;
        if (field.unescaped_key().get(key)) {
            out.error = BodyError::not_json;
            return out;
        }
        simdjson::ondemand::value value;
        if (field.value().get(value)) {
            out.error = BodyError::not_json;
            return out;
        }
        if (key == "model") {
            // The key's model list judges one model; an upstream that reads another
            // occurrence (JSON leaves duplicates to the reader) would run a model the
            // key may not use. The unescaped key catches "mod\u0065l" too.
            if (have_model) {
                out.error = BodyError::duplicate_model;
                return out;
            }
            std::string_view raw = value.raw_json_token();
            std::string_view model;
            if (value.get_string().get(model) || model.empty()) {
                out.error = BodyError::model_not_string;
                return out;
            }
            while (!raw.empty() && raw.back() != '"') raw.remove_suffix(1);  // trailing space
            out.model.assign(model);
            out.model_at = static_cast<std::size_t>(raw.data() - body.data());
            out.model_length = raw.size();
            have_model = true;
        } else if (key == "stream") {
            bool stream = false;
            if (!value.get_bool().get(stream)) out.stream = stream;
        } else if (key == "prompt_cache_key") {
            std::string_view s;
            if (!value.get_string().get(s)) out.prompt_cache_key.assign(s);
        } else if (key == "metadata") {
            read_metadata_user_id(value, out);
        } else if (key == "stream_options") {
            have_options = true;
            read_stream_options(value, body, out);
        }
        // Other members are skipped structurally (On-Demand does not look inside them;
        // the upstream judges their content).
    }
    if (!have_model) out.error = BodyError::no_model;
    if (!have_options) offer_new_member(body, out);
    return out;
}

void apply_edits(std::string& body, std::span<BodyEdit> edits) {
    std::sort(edits.begin(), edits.end(), [](const BodyEdit& a, const BodyEdit& b) { return a.at > b.at; });
    for (const BodyEdit& e : edits) body.replace(e.at, e.length, e.text);
}

std::string model_token(std::string_view model) {
    std::string token = "\"";
    for (char c : model) {
        if (c == '"' || c == '\\') token += '\\';
        token += c;
    }
    token += '"';
    return token;
}

void rewrite_model(std::string& body, const RequestFields& fields, std::string_view new_model) {
    body.replace(fields.model_at, fields.model_length, model_token(new_model));
}

}  // namespace rr::gateway
