"""Copies the table scripts/bench just rendered into README.md, between `<!-- bench:begin -->` and `<!-- bench:end -->`,
so the README always shows the latest run (issue 9) without hand-copying.

    python3 readme_results.py README.md TABLE.md
"""
import sys

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def main():
    readme_path, table_path = sys.argv[1], sys.argv[2]
    readme = open(readme_path, encoding="utf-8").read()
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        sys.exit(f"{readme_path} has no {BEGIN} … {END} block for the results")
    lines = open(table_path, encoding="utf-8").read().splitlines()
    # The table's own title is the README section's; its sections become sub-headings of that section.
    body = [("####" + line[2:]) if line.startswith("## ") else line for line in lines if not line.startswith("# ")]
    text = "\n".join(body).strip("\n")
    updated = readme[: start + len(BEGIN)] + "\n" + text + "\n" + readme[end:]
    with open(readme_path, "w", encoding="utf-8") as out:
        out.write(updated)


if __name__ == "__main__":
    main()
