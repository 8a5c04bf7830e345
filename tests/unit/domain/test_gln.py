from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from soredi_sync.domain.gln import has_valid_check_digit, is_well_formed, with_check_digit


class TestCheckDigit:
    def test_real_location_numbers_from_sor_have_valid_check_digits(self) -> None:
        for gln in ("5790000173624", "5790000141227", "5790002759994", "5790000120314"):
            assert has_valid_check_digit(gln), gln

    def test_a_changed_last_digit_is_detected(self) -> None:
        assert not has_valid_check_digit("5790000173625")

    def test_wrong_length_or_letters_are_not_well_formed(self) -> None:
        assert not is_well_formed("579000017362")
        assert not is_well_formed("57900001736241")
        assert not is_well_formed("579000017362X")
        assert not has_valid_check_digit("579000017362X")

    @given(st.text(alphabet="0123456789", min_size=12, max_size=12))
    def test_any_body_with_its_check_digit_is_valid(self, body: str) -> None:
        assert has_valid_check_digit(with_check_digit(body))

    @given(
        st.text(alphabet="0123456789", min_size=12, max_size=12),
        st.integers(min_value=1, max_value=9),
    )
    def test_any_single_digit_error_in_the_check_digit_is_caught(
        self, body: str, offset: int
    ) -> None:
        gln = with_check_digit(body)
        wrong = gln[:-1] + str((int(gln[-1]) + offset) % 10)
        assert not has_valid_check_digit(wrong)
