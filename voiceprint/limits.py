"""How large a recording may be, one constant per limit (API.md, "Audio input").

Only numbers, no imports: the URL fetcher (which knows nothing of Django), the API's audio
input and the console's upload forms all read them from here.
"""

KB = 1024
MB = 1024 * KB

#: A raw audio body (`audio/*`, `application/octet-stream`), parameters in headers.
MAX_RAW_BODY_BYTES = 512 * KB
#: One recording given any other way: fetched from `audio_url`, decoded from
#: `audio_base64`, uploaded as a multipart `file`, or uploaded in the console.
MAX_AUDIO_BYTES = 10 * MB
