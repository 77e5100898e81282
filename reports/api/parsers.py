"""The API's JSON parser: DRF's, with the nesting limit checked before parsing (a deep document
is a 400 naming the limit, never a RecursionError)."""

import codecs

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

from ..intake.jsontext import TooDeep, json_loads_limited


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            text = codecs.getreader(encoding)(stream).read()
            return json_loads_limited(text, parse_constant=json.strict_constant if self.strict else None)
        except TooDeep as exc:
            raise ParseError(str(exc)) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
