#!/usr/bin/env python3
"""Embeds a file as a C string: embed.py INPUT OUTPUT SYMBOL."""
import json
import sys

src, out, sym = sys.argv[1:4]
text = open(src, encoding="utf-8").read()
json.loads(text)  # refuse to embed a schema that does not parse
with open(out, "w", encoding="utf-8") as f:
    f.write("/* Generated from %s by qmp/embed.py. */\n" % src.split("/")[-1])
    f.write("const char %s[] =\n" % sym)
    for line in text.splitlines():
        f.write('    "%s\\n"\n' % line.replace("\\", "\\\\").replace('"', '\\"'))
    f.write(";\n")
