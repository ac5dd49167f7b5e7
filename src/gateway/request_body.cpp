#include "ringrelay/gateway/request_body.hpp"

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
        }
        // Other members are skipped structurally (On-Demand does not look inside them;
        // the upstream judges their content).
    }
    if (!have_model) out.error = BodyError::no_model;
    return out;
}

void rewrite_model(std::string& body, const RequestFields& fields, std::string_view new_model) {
    std::string token = "\"";
    for (char c : new_model) {
        if (c == '"' || c == '\\') token += '\\';
        token += c;
    }
    token += '"';
    body.replace(fields.model_at, fields.model_length, token);
}

}  // namespace rr::gateway
