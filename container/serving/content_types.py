"""The media types the endpoint reads and writes."""

JSON = "application/json"
JSONLINES = "application/jsonlines"
NPY = "application/x-npy"
NPZ = "application/x-npz"
CSV = "text/csv"
PNG = "image/png"
JPEG = "image/jpeg"
X_IMAGE = "application/x-image"
ANY = "*/*"

# Bodies of these types are UTF-8 text.
TEXT = (JSON, JSONLINES, CSV)


def media_type(header):
    """The media type of a Content-Type or Accept entry, less its parameters, in lower case."""
    return (header or "").split(";")[0].strip().lower()


# What requests may carry and what answers may be, in the order error bodies list them; the
# decoder and encoder tables hold exactly these.
INPUTS = (JSON, JSONLINES, CSV, NPY, NPZ, PNG, JPEG, X_IMAGE)
OUTPUTS = (JSON, JSONLINES, CSV, NPY)
