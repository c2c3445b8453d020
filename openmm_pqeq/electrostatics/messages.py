"""Numbers in error messages that TorchScript builds (its ``str(float)`` prints 17 digits)."""


def decimal(value: float, digits: int) -> str:
    """``value`` rounded to ``digits`` decimals, as text: ``decimal(0.46999, 3) == "0.47"``
    (trailing zeros dropped, at least one digit after the point)."""
    scale = 1
    for _ in range(digits):  # an int (TorchScript's ** gives a float)
        scale *= 10
    count = int(abs(value) * scale + 0.5)
    whole = str(count // scale)
    fraction = str(count % scale)
    while len(fraction) < digits:
        fraction = "0" + fraction
    while len(fraction) > 1 and fraction.endswith("0"):
        fraction = fraction[:-1]
    sign = "-" if value < 0 and count > 0 else ""
    return sign + whole + "." + fraction
