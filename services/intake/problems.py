"""Refusals as citizens and client developers read them: the field at fault and the reason, in
Vietnamese and English, for pydantic's validation errors as for intake's own :class:`Problem`."""

from typing import Any

from pydantic import ValidationError

from services.intake.domain import Problem

# pydantic error type -> (Vietnamese, English) reason; {name}s come from the error's context.
_REASONS = {
    "missing": ("Thiếu thông tin bắt buộc", "Field required"),
    "string_too_short": ("Quá ngắn (tối thiểu {min_length} ký tự)", "Too short (at least {min_length} characters)"),
    "string_too_long": ("Quá dài (tối đa {max_length} ký tự)", "Too long (at most {max_length} characters)"),
    "too_long": ("Quá nhiều mục (tối đa {max_length})", "Too many items (at most {max_length})"),
    "string_type": ("Phải là chuỗi ký tự", "Must be a string"),
    "bool_type": ("Phải là true hoặc false", "Must be true or false"),
    "bool_parsing": ("Phải là true hoặc false", "Must be true or false"),
    "int_type": ("Phải là số nguyên", "Must be an integer"),
    "int_parsing": ("Phải là số nguyên", "Must be an integer"),
    "float_type": ("Phải là số", "Must be a number"),
    "float_parsing": ("Phải là số", "Must be a number"),
    "finite_number": ("Phải là số hữu hạn", "Must be a finite number"),
    "extra_forbidden": ("Trường này không được chấp nhận", "This field is not accepted"),
    "literal_error": ("Giá trị không hợp lệ, chỉ nhận: {expected}", "Invalid value; expected {expected}"),
    "json_invalid": ("Nội dung không phải JSON hợp lệ", "The body is not valid JSON"),
    "model_type": ("Phải là một đối tượng JSON", "Must be a JSON object"),
    "model_attributes_type": ("Phải là một đối tượng JSON", "Must be a JSON object"),
    "dict_type": ("Phải là một đối tượng JSON", "Must be a JSON object"),
    "list_type": ("Phải là một danh sách", "Must be a list"),
    "greater_than_equal": ("Phải lớn hơn hoặc bằng {ge}", "Must be at least {ge}"),
    "less_than_equal": ("Phải nhỏ hơn hoặc bằng {le}", "Must be at most {le}"),
}


def _field(location: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in location if p != "body") or "body"


def _reason(error: dict[str, Any]) -> tuple[str, str]:
    kind = error.get("type", "")
    if kind in ("too_short", "too_long") and isinstance(error.get("input"), str):
        # The length of cleaned text (contracts.text.Text), checked after cleaning: pydantic names
        # it as it does a list's, but it counts characters.
        kind = "string_" + kind
    if kind == "value_error":
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        return "Giá trị không hợp lệ: " + message, message
    template = _REASONS.get(kind)
    if template is None:
        return "Dữ liệu không hợp lệ: " + error.get("msg", ""), error.get("msg", "")
    context = error.get("ctx") or {}
    try:
        return template[0].format(**context), template[1].format(**context)
    except (KeyError, IndexError):
        return template


def from_validation(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """pydantic's errors as intake's: one entry per field, with the reason in both languages."""
    out = []
    for error in errors:
        vi, en = _reason(error)
        out.append({"field": _field(tuple(error.get("loc", ()))), "reason_vi": vi, "reason_en": en})
    return out


def problems_of(error: Exception, rename: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The entries for a refusal raised while reading a request (a Problem or a ValidationError),
    with fields renamed to what this client calls them."""
    if isinstance(error, ValidationError):
        found = from_validation(error.errors())
    elif isinstance(error, Problem):
        found = [error.as_dict()]
    else:
        raise error
    names = rename or {}
    return [{**p, "field": names.get(p["field"].split(".")[0], p["field"])} for p in found]


class Invalid(Exception):
    """A request refused for several reasons at once, each naming its field."""

    def __init__(self, problems: list[dict[str, str]], status: int = 422):
        super().__init__("; ".join(p["field"] for p in problems))
        self.problems, self.status = problems, status


def open311_errors(status: int, problems: list[dict[str, str]]) -> list[dict[str, Any]]:
    """GeoReport v2 errors are a list of ``{code, description}``; ours add the field and both languages."""
    return [{"code": status, "description": f"{p['field']}: {p['reason_en']}", **p} for p in problems]
