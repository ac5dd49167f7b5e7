#include "request_json.hpp"

#include <simdjson.h>

namespace rr::mock {

namespace od = simdjson::ondemand;

struct RequestJsonReader::Impl {
    od::parser parser;
    std::string padded;  // body copy; capacity >= size + SIMDJSON_PADDING
};

RequestJsonReader::RequestJsonReader() : impl_(std::make_unique<Impl>()) {}
RequestJsonReader::~RequestJsonReader() = default;

namespace {

// Calls read(value) with the member `name` of the object `value`; any other JSON type
// is not ours to judge and is skipped.
template <typename Read>
bool read_member(simdjson::simdjson_result<od::value> value, std::string_view name, Read read) noexcept {
    od::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) return false;
    if (type != od::json_type::object) return true;
    od::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) return false;
    for (auto field : object) {
        std::string_view key;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS) return false;
        if (key == name && !read(field.value())) return false;
    }
    return true;
}

// "stream_options": {"include_usage": true} asks for usage at the end of a stream.
bool read_stream_options(simdjson::simdjson_result<od::value> value, RequestFields& out) noexcept {
    return read_member(value, "include_usage", [&](simdjson::simdjson_result<od::value> v) {
        return v.get_bool().get(out.include_usage) == simdjson::SUCCESS;
    });
}

// "thinking": {"type":"enabled","budget_tokens":N} turns thinking on; "disabled" or
// null leaves it off.
bool read_thinking(simdjson::simdjson_result<od::value> value, RequestFields& out) noexcept {
    return read_member(value, "type", [&](simdjson::simdjson_result<od::value> v) {
        std::string_view kind;
        if (v.get_string().get(kind) != simdjson::SUCCESS) return false;
        out.thinking = kind == "enabled";
        return true;
    });
}

// The name of the first tool, in either dialect: Anthropic {"name":...} or OpenAI
// {"type":"function","function":{"name":...}} (Responses: {"type":"function","name":...}).
bool read_tool_name(od::object tool, RequestFields& out) noexcept {
    for (auto field : tool) {
        std::string_view key;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS) return false;
        if (key == "name") {
            std::string_view name;
            if (field.value().get_string().get(name) != simdjson::SUCCESS) return false;
            out.tool_name.assign(name);
        } else if (key == "function") {
            od::object function;
            if (field.value().get_object().get(function) != simdjson::SUCCESS) return false;
            if (!read_tool_name(function, out)) return false;
        }
    }
    return true;
}

bool read_first_tool(simdjson::simdjson_result<od::value> value, RequestFields& out) noexcept {
    od::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) return false;
    if (type != od::json_type::array) return true;
    od::array tools;
    if (value.get_array().get(tools) != simdjson::SUCCESS) return false;
    bool first = true;
    for (auto element : tools) {
        od::object tool;
        if (element.get_object().get(tool) != simdjson::SUCCESS) return false;
        if (first && !read_tool_name(tool, out)) return false;
        first = false;
    }
    return true;
}

// Whether one message hands a tool's result back: {"role":"tool"} (OpenAI) or a
// content block {"type":"tool_result"} (Anthropic).
bool message_answers_tool(od::object message, bool& answers) noexcept {
    answers = false;
    for (auto field : message) {
        std::string_view key;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS) return false;
        od::value value;
        if (field.value().get(value) != simdjson::SUCCESS) return false;
        if (key == "role") {
            std::string_view role;
            if (value.get_string().get(role) == simdjson::SUCCESS && role == "tool") answers = true;
        } else if (key == "content") {
            od::json_type type;
            if (value.type().get(type) != simdjson::SUCCESS) return false;
            if (type != od::json_type::array) continue;
            for (auto block : value.get_array()) {
                od::object b;
                if (block.get_object().get(b) != simdjson::SUCCESS) continue;
                std::string_view kind;
                if (b["type"].get_string().get(kind) == simdjson::SUCCESS && kind == "tool_result") answers = true;
            }
        }
    }
    return true;
}

// "messages": only its last element matters (is it a tool's result?).
bool read_messages(simdjson::simdjson_result<od::value> value, RequestFields& out) noexcept {
    od::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) return false;
    if (type != od::json_type::array) return true;
    od::array messages;
    if (value.get_array().get(messages) != simdjson::SUCCESS) return false;
    for (auto element : messages) {
        od::object message;
        bool answers = false;
        if (element.get_object().get(message) == simdjson::SUCCESS && !message_answers_tool(message, answers))
            return false;
        out.answers_tool_call = answers;
    }
    return true;
}

bool read_field(std::string_view key, simdjson::simdjson_result<od::value> value,
                RequestFields& out) noexcept {
    if (key == "model") {
        std::string_view model;
        if (value.get_string().get(model) != simdjson::SUCCESS) return false;
        out.model.assign(model);
        out.has_model = true;
    } else if (key == "stream") {
        od::json_type type;
        if (value.type().get(type) != simdjson::SUCCESS) return false;
        if (type == od::json_type::null) return true;
        if (value.get_bool().get(out.stream) != simdjson::SUCCESS) return false;
    } else if (key == "input") {
        od::json_type type;
        if (value.type().get(type) != simdjson::SUCCESS) return false;
        if (type == od::json_type::string) {
            std::string_view text;
            if (value.get_string().get(text) != simdjson::SUCCESS) return false;
            out.input_text.assign(text);
            return true;
        }
        if (type != od::json_type::array) return true;
        std::size_t n = 0;
        if (value.count_elements().get(n) != simdjson::SUCCESS) return false;
        out.inputs = static_cast<std::uint32_t>(n);
    } else if (key == "stream_options") {
        return read_stream_options(value, out);
    } else if (key == "thinking") {
        return read_thinking(value, out);
    } else if (key == "messages") {
        return read_messages(value, out);
    } else if (key == "tools") {
        return read_first_tool(value, out);
    }
    return true;
}

}  // namespace

bool RequestJsonReader::read(std::string_view body, RequestFields& out) noexcept {
    out = RequestFields{};
    std::string& buf = impl_->padded;
    buf.reserve(body.size() + simdjson::SIMDJSON_PADDING);
    buf.assign(body);
    const simdjson::padded_string_view input(buf.data(), buf.size(), buf.capacity());

    od::document doc;
    od::object object;
    if (impl_->parser.iterate(input).get(doc) != simdjson::SUCCESS) return false;
    if (doc.get_object().get(object) != simdjson::SUCCESS) return false;
    for (auto field : object) {
        std::string_view key;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS) return false;
        if (!read_field(key, field.value(), out)) return false;
    }
    // A syntax error inside the object surfaces as an iteration error above; bytes
    // after the closing brace only show here: past the end, the document has no
    // current location.
    return doc.current_location().error() == simdjson::OUT_OF_BOUNDS;
}

}  // namespace rr::mock
