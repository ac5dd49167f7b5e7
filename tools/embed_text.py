#!/usr/bin/env python3
"""Turns a text file (the admin status page, src/admin/status_page.html) into a C++
header holding it as one raw string literal, so the page is edited as HTML and
served from the binary without reading any file at run time.

    embed_text.py INPUT OUTPUT SYMBOL   ->   inline constexpr std::string_view SYMBOL = R"...";
"""
import sys

DELIMITER = 'rr_embed'


def main():
    if len(sys.argv) != 4:
        sys.exit('usage: embed_text.py INPUT OUTPUT SYMBOL')
    source, output, symbol = sys.argv[1:]
    with open(source, encoding='utf-8') as f:
        text = f.read()
    if ')' + DELIMITER + '"' in text:
        sys.exit('%s holds the raw-string delimiter )%s": change DELIMITER' % (source, DELIMITER))
    with open(output, 'w', encoding='utf-8') as f:
        f.write('// Generated from %s by tools/embed_text.py: edit the source, not this.\n' % source.split('/')[-1])
        f.write('#pragma once\n#include <string_view>\n\n')
        f.write('inline constexpr std::string_view %s = R"%s(' % (symbol, DELIMITER))
        f.write(text)
        f.write(')%s";\n' % DELIMITER)


if __name__ == '__main__':
    main()
