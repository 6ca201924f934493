"""File lists (csv/tsv/txt) written by hand or by other tools: every flaw is one clear DataError.

Paths that leave the list's folder (``../x.png``, absolute paths) are followed on purpose: a list
is trusted like the paths typed on the command line (dataset lists often point at a shared
image store), and featscope only ever *reads* what it names, as an image. A list entry naming a
file that is not an image (``../../etc/passwd``) fails when it is read, as any bad image does.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from featscope.cli import main
from featscope.data.sources import (
    MAX_CLASS_INDEX,
    apply_class_names,
    file_list,
    load_samples,
    read_class_names,
)
from featscope.errors import DataError


@pytest.fixture
def root(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (4, 4), (10, 20, 30)).save(tmp_path / name)
    return tmp_path


def _list(root, text: str, name: str = "list.csv"):
    path = root / name
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_label_column(root):
    with pytest.raises(DataError, match=r"line 2 of file list '.*list\.csv' has 1 column\(s\)"):
        file_list(_list(root, "a.png,0\nb.png\n"))


def test_header_names_columns_a_row_lacks(root):
    text = "label,weight,path\n0,1,a.png\n1,1\n"
    with pytest.raises(DataError, match=r"line 3 .* has 2 column\(s\).*expected path,label"):
        file_list(_list(root, text))


def test_header_without_rows(root):
    with pytest.raises(DataError, match=r"has a header \(line 1\) but no rows"):
        file_list(_list(root, "path,label\n"))


@pytest.mark.parametrize("text", ["", "\n \n\t\n"])
def test_empty_list(root, text):
    with pytest.raises(DataError, match=r"file list '.*list\.csv' has no rows"):
        file_list(_list(root, text))


def test_empty_path_and_empty_label(root):
    with pytest.raises(DataError, match=r"line 1 of file list .* has an empty path"):
        file_list(_list(root, " ,0\n"))
    with pytest.raises(DataError, match=r"line 2 of file list .* has an empty label"):
        file_list(_list(root, "a.png,0\nb.png, \n"))


def test_labels_mixing_indices_and_names(root):
    with pytest.raises(DataError, match=r"labels mix class indices and class names \(line 1: 0"):
        file_list(_list(root, "a.png,0\nb.png,cat\n"))


def test_negative_label(root):
    with pytest.raises(DataError, match=r"label -1 \(line 2\) is negative"):
        file_list(_list(root, "a.png,0\nb.png,-1\n"))


@pytest.mark.parametrize("label", [str(MAX_CLASS_INDEX), "10**12", "99999999999999999999"])
def test_huge_integer_label_is_refused_before_allocating_class_names(root, label):
    label = str(10**12) if label == "10**12" else label
    # without the limit this made a tuple of 10**12 class names (out of memory) or overflowed
    with pytest.raises(DataError, match=r"label \d+ \(line 1\) is too large: class indices must"):
        file_list(_list(root, f"a.png,{label}\n"))


def test_unknown_label_name_against_class_names(root):
    samples = file_list(_list(root, "a.png,cat\nb.png,dog\n"))
    with pytest.raises(DataError, match=r"missing from the 2 given \('dog'\); add them"):
        apply_class_names(samples, ["cat", "bird"])


def test_unknown_label_via_cli_is_one_line(root, capsys):
    _list(root, "a.png,cat\nb.png,dog\nc.png,cat\n")
    (root / "names.txt").write_text("cat\nbird\n")
    argv = ["tsne", "--data", str(root / "list.csv"), "--class-names", str(root / "names.txt")]
    argv += ["--model", "demo:digits-cnn", "--no-html", "--quiet", "--work-dir", str(root / "wd")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: ")
    assert "'dog'" in err[0]


def test_index_label_without_a_class_name(root):
    samples = file_list(_list(root, "a.png,0\nb.png,4\n"))
    with pytest.raises(DataError, match=r"2 class names cannot name label 4"):
        apply_class_names(samples, ["x", "y"])


def test_paths_that_do_not_exist_are_counted_and_named(root):
    text = "a.png,0\n" + "".join(f"gone{i}.png,1\n" for i in range(7))
    with pytest.raises(
        DataError, match=r"7 of 8 image paths .* do not exist \('gone0\.png' \(line 2\).*, \.\.\.\)"
    ):
        file_list(_list(root, text))


def test_relative_path_leaving_the_list_folder_is_followed(root):
    (root / "lists").mkdir()
    samples = file_list(_list(root, "../a.png,0\n", name="lists/list.csv"))
    assert samples.ids == ("../a.png",)
    assert samples.load(0).size == (4, 4)


def test_absolute_path_outside_the_list_folder_is_followed(root, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("store") / "far.png"
    Image.new("RGB", (3, 5)).save(elsewhere)
    samples = file_list(_list(root, f"{elsewhere},0\n"))
    assert samples.load(0).size == (3, 5)


def test_path_to_a_non_image_outside_the_root_fails_when_read(root):
    # the `../../etc/passwd` case: the list loads (the file exists), reading it is a DataError
    (root / "deep" / "lists").mkdir(parents=True)
    (root / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    samples = file_list(_list(root, "../../passwd,0\n", name="deep/lists/list.csv"))
    with pytest.raises(DataError, match=r"cannot read image '.*passwd': not an image file"):
        samples.load(0)


def test_not_utf8_list(root):
    (root / "list.csv").write_bytes(b"a.png,\xff\xfe\n")
    with pytest.raises(DataError, match=r"file list '.*list\.csv' is not UTF-8 text"):
        file_list(root / "list.csv")


def test_byte_order_mark_is_ignored(root):
    (root / "list.csv").write_bytes("\ufeffpath,label\na.png,0\n".encode())
    assert file_list(root / "list.csv").ids == ("a.png",)


def test_nul_byte_in_a_path(root):
    with pytest.raises(DataError, match=r"1 of 1 image paths .* do not exist"):
        file_list(_list(root, "a\0.png,0\n"))


def test_field_longer_than_the_csv_limit(root):
    with pytest.raises(DataError, match=r"line 1 of file list '.*list\.csv' cannot be read as"):
        file_list(_list(root, f"{'x' * 200_000}.png,0\n"))


def test_unclosed_quote_does_not_swallow_the_next_lines(root):
    # csv would read the rest of the file into one quoted field; each line stands alone
    with pytest.raises(DataError, match=r"line 1 of file list .* opens a quoted value that does"):
        file_list(_list(root, '"a.png,0\nb.png,1\n'))


def test_quoted_line_break_in_a_metadata_value(root):
    # a spreadsheet's multi-line cell: named as such, not as "labels mix indices and names"
    text = 'path,label,note\na.png,0,"two\nlines, here",\nb.png,1,plain\n'
    with pytest.raises(DataError, match=r"line 2 of .* opens a quoted value .*line break"):
        file_list(_list(root, text))
    # quotes that close on their line stay fine, commas and quotes inside included
    ok = file_list(_list(root, 'path,label,note\na.png,0,"a, ""b"""\nb.png,1,x\n'))
    assert list(ok.metadata["note"]) == ['a, "b"', "x"]


def test_list_that_is_a_folder_or_missing(root):
    with pytest.raises(DataError, match=r"data '.*nothing\.csv' does not exist"):
        load_samples(root / "nothing.csv")
    (root / "dir.csv").mkdir()
    with pytest.raises(DataError, match=r"has no class sub-folders"):
        load_samples(root / "dir.csv")


def test_class_names_file_flaws(root):
    (root / "names.txt").write_text("cat\n\ndog\n")
    with pytest.raises(DataError, match=r"has a blank line \(line 2\)"):
        read_class_names(root / "names.txt")
    (root / "names.txt").write_text("cat\ndog\ncat\n")
    with pytest.raises(DataError, match=r"repeats 'cat' \(lines 1 and 3\)"):
        read_class_names(root / "names.txt")


def test_tsv_and_whitespace_lists_with_spaces_in_paths(root):
    Image.new("RGB", (2, 2)).save(root / "my photo.png")
    assert file_list(_list(root, "my photo.png\t1\n", name="l.tsv")).ids == ("my photo.png",)
    samples = file_list(_list(root, "my photo.png 1\na.png 0\n", name="l.txt"))
    np.testing.assert_array_equal(samples.labels, [1, 0])
