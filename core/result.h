// Errors are values: every fallible operation returns Result<T> (or Status) with a message that
// names the file and what is wrong. Nothing in core/ exits or aborts on user input.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ef {

struct Error {
    std::string message;
};

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error e) : v_(std::move(e)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const Error& error() const { return std::get<1>(v_); }
    const std::string& message() const { return error().message; }

private:
    std::variant<T, Error> v_;
};

// Result for operations that return nothing on success.
class [[nodiscard]] Status {
public:
    Status() = default;
    Status(Error e) : err_(std::move(e)) {}
    static Status success() { return {}; }
    bool ok() const { return !err_.has_value(); }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return *err_; }
    const std::string& message() const { return err_->message; }

private:
    std::optional<Error> err_;
};

inline Error make_error(std::string msg) { return Error{std::move(msg)}; }

}  // namespace ef

// Propagate an error from a Result/Status expression; binds the value otherwise.
#define EF_TRY_STATUS(expr)                                  \
    do {                                                     \
        auto ef_status_ = (expr);                            \
        if (!ef_status_.ok()) return ef_status_.error();     \
    } while (0)
