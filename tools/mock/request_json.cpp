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
