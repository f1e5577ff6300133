"""What makes two keyless Open311 posts the same request."""

from datetime import date

from services.intake.channels.open311 import GeoReportRequest

REPORT = {"service_code": "water", "address_string": "Ngã tư Lê Lợi - Nam Kỳ Khởi Nghĩa, Quận 1",
          "phone": "0978123123", "first_name": "An", "description": "Ống nước vỡ, nước tràn ra đường."}


def test_the_same_report_on_the_same_day_is_one_request_and_on_another_day_a_new_one():
    """The same trouble reported again weeks later got back the first request's code, long closed,
    and no case was opened for it."""
    today, later = date(2026, 12, 3), date(2026, 12, 24)
    same = GeoReportRequest(**REPORT)
    assert same.natural_key(today) == GeoReportRequest(**REPORT).natural_key(today)
    assert same.natural_key(today) != same.natural_key(later)
    assert same.natural_key(today) != GeoReportRequest(**REPORT | {"first_name": "Bình"}).natural_key(today)
    assert same.natural_key(today) == GeoReportRequest(**REPORT | {"api_key": "another"}).natural_key(today)
