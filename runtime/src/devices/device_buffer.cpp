// DeviceBuffer: device memory of the backend seam (backend.hpp), freed with its owner.
#include "llmq/runtime/backend.hpp"

namespace llmq {

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
    if (this == &other) return *this;
    if (data_) device_->deallocate(data_);
    device_ = other.device_;
    data_ = other.data_;
    bytes_ = other.bytes_;
    other.device_ = nullptr;
    other.data_ = nullptr;
    other.bytes_ = 0;
    return *this;
}

DeviceBuffer::~DeviceBuffer() {
    if (data_) device_->deallocate(data_);
}

}  // namespace llmq
