import unittest

from greeter import greet


class GreeterTest(unittest.TestCase):
    def test_greets_the_world(self):
        self.assertEqual(greet("world"), "Hello, world!")

    def test_capitalises_the_name(self):
        self.assertEqual(greet("ada"), "Hello, Ada!")


if __name__ == "__main__":
    unittest.main()
