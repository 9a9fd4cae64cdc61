"""Idle handlers give their stack pages back (about a second after their
last progress) and carry on unchanged when their peer speaks again."""

import unittest

import kstest


class Hibernate(kstest.KsTestCase):
    def test_hello_and_echo_wake_up_intact(self):
        d = self.start_daemon([{"name": "hello", "handler": "hello"},
                               {"name": "echo", "handler": "echo"}])
        h = d.connect("hello")
        self.assertLine(h, "Please enter your name")
        h.sendall(b"before\n")
        self.assertLine(h, "Hello, before!")
        e = d.connect("echo")
        e.sendall(b"ping 1\n")
        self.assertLine(e, "ping 1")

        d.wait_for_log(r"\[hello hello .*\] idle: stack paged out")
        d.wait_for_log(r"\[echo echo .*\] idle: stack paged out")

        # The coroutines resume from the restored stacks.
        h.sendall(b"after\n")
        self.assertLine(h, "Hello, after!")
        e.sendall(b"ping 2\n")
        self.assertLine(e, "ping 2")
        # Again, after a second sleep of the stack.
        mark = d.mark()
        d.wait_for_log(r"\[hello hello .*\] idle: stack paged out", since=mark)
        h.sendall(b"again\n")
        self.assertLine(h, "Hello, again!")
        h.shutdown(2)
        e.shutdown(1)
        self.assertEOF(e)


if __name__ == "__main__":
    unittest.main()
