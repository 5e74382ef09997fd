from tests.harness import Editor


def test_smoke(editor: Editor) -> None:
    editor.set_text("def add(a, b):\n")
    editor.type("Go    return ")
    hint = editor.wait_hint()
    print(hint)
    before = editor.text()
    editor.type("<Tab>")
    print(repr(before), repr(editor.text()))
    print(editor.stats(), editor.messages())
